#!/bin/bash
# The first run's rough edges (contrib/demo.sh and the harness it uses):
# - an NFS server that answers only after more than 5 s is waited for, also under
#   `set -e` (the demo's mode), instead of the script dying without a word;
# - a demo whose start fails (here nfs-ganesha cannot start) says what failed and which
#   log to read, stops the s3rver it had started, and `contrib/demo.sh stop` afterwards
#   finds nothing left running.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_need_cmd ganesha.nfsd nfs-ls

FAKE=$H_TMP/fakebin
mkdir -p "$FAKE"

# nfs-ls that fails its first 70 calls (the harness polls every 0.1 s: over 7 s), then is
# the real one
real_nfs_ls=$(command -v nfs-ls)
cat >"$FAKE/nfs-ls" <<EOT
#!/bin/bash
n=\$(( \$(cat "$H_TMP/nfs-ls.calls" 2>/dev/null || echo 0) + 1 ))
echo "\$n" >"$H_TMP/nfs-ls.calls"
[ "\$n" -gt 70 ] || exit 1
exec "$real_nfs_ls" "\$@"
EOT
chmod +x "$FAKE/nfs-ls"
out=$(PATH=$FAKE:$PATH bash -ec 'source "$abs_top_srcdir/tests/lib/harness.sh"; h_init; h_start_nfs; echo NFS-UP' 2>&1)
h_is "$(printf '%s\n' "$out" | grep -c '^NFS-UP$')" 1 \
	"set -e: an NFS server that answers only after 7 s is waited for (no silent exit)"
rm -f "$FAKE/nfs-ls"

# ganesha.nfsd that cannot start
cat >"$FAKE/ganesha.nfsd" <<'EOT'
#!/bin/bash
echo "fake ganesha.nfsd: refusing to start" >&2
exit 1
EOT
chmod +x "$FAKE/ganesha.nfsd"
DEMO=$H_TMP/demo
export FERRY_DEMO_DIR=$DEMO FERRY_DEMO_BUILD=$H_BUILD
out=$(PATH=$FAKE:$PATH bash "$H_SRC/contrib/demo.sh" 2>&1)
rc=$?
h_is "$rc" 1 "the demo fails when nfs-ganesha cannot start"
h_ok "it says which step failed" grep -q "FAILED while starting nfs-ganesha" <<<"$out"
h_ok "it names the log to read" grep -qF "see $DEMO/ganesha.log" <<<"$out"
h_ok "it gives the cause" grep -q "cause: ganesha.nfsd did not start" <<<"$out"
# (the pattern's [a] keeps pgrep from finding the shell that runs it)
h_ok "the s3rver it started is stopped" bash -c "! pgrep -f '$DEMO/s3dat[a]' >/dev/null"
h_is "$(bash "$H_SRC/contrib/demo.sh" stop 2>&1)" \
	"demo: nothing to stop
demo: stopped; the mount, both servers and $DEMO are gone" \
	"contrib/demo.sh stop afterwards: nothing left running, the logs removed"
h_ok "no process of the demo is left" bash -c "! pgrep -f '${DEMO%o}[o]' >/dev/null"
h_ok "no file of the demo is left" test ! -e "$DEMO"
h_diag "$(printf '%s\n' "$out" | tail -n 6)"
h_done
