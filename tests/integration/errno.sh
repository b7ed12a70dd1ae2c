#!/bin/bash
# errno.sh - a store that cannot be reached fails a call with EIO, never with the
# socket's errno (ETIMEDOUT, ECONNREFUSED...), through every handler that reaches a store
# (fs.c maps the errors once per handler; doc/reliability.md), and the user.ferryfs.*
# names answer from their one table (listxattr, ferryctl show, EROFS / ENODATA). Over a
# real s3rver, behind tests/tools/faultproxy.py, and nfs-ganesha:
#   a) S3 stalled (the proxy accepts requests and never answers, s3_timeout=2): the
#      user.ferryfs.* names that ask S3 about a path on the new store (s3key of a file,
#      state of a directory) fail with EIO, and so does a read of an S3-only file;
#   b) the new store failing under a file open for writing: hung (nfs-ganesha stopped
#      with SIGSTOP: the call times out), a write(2) through the handle fails with EIO;
#      gone (nfs-ganesha ended: connections refused), write(2) and fsync(2) through the
#      handle, statfs(2) of the mount and getxattr fail with EIO or succeed (a write the
#      store buffers), never with another errno.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs

mkdir -p "$H_TMP/src"
head -c 100000 /dev/urandom >"$H_TMP/src/s3only.bin"
h_aws s3 cp --only-show-errors --recursive "$H_TMP/src" "s3://$H_BUCKET/" || h_bail "seeding S3"

CONTROL=$H_TMP/faults.ctl
"$PY3" "$H_SRC/tests/tools/faultproxy.py" --upstream "$H_S3_URL" --port-file "$H_TMP/fault.port" \
	--control "$CONTROL" --log "$H_TMP/proxy.log" &
H_PIDS+=($!)
h_wait_for 20 test -s "$H_TMP/fault.port" || h_bail "faultproxy did not start"
REAL_S3_URL=$H_S3_URL
H_S3_URL=http://127.0.0.1:$(cat "$H_TMP/fault.port")
# one try of 2 s per S3 request: a stall costs seconds; no migration (reads queue nothing)
h_mount "s3_timeout=2,s3_retries=0,migrate_on=never,mirror=off,xattr_list=1"
H_S3_URL=$REAL_S3_URL
M=$H_MNT

# errmsg CMD...: the strerror text a command printed last ("ok" when it succeeded)
ERRTEXT='Input/output error\|Connection timed out\|Connection refused\|Connection reset by peer'
ERRTEXT+='\|Transport endpoint is not connected\|No data available\|[A-Z][A-Za-z ]*$'
errmsg() {
	local out
	if out=$("$@" 2>&1 >/dev/null); then echo ok; return; fi
	printf '%s\n' "$out" | grep -o "$ERRTEXT" | tail -n 1
}

echo data >"$M/onnfs.txt" || h_bail "cannot create a file through the mount"
mkdir "$M/dir" || h_bail "cannot create a directory through the mount"

# ---------------------------------------------------------------- the names (one table)
out=$("$PY3" - "$M" <<'PY'
import errno, os, sys
m = sys.argv[1]
f = os.path.join(m, "onnfs.txt")
def e(fn):
    try:
        fn()
        return "ok"
    except OSError as x:
        return errno.errorcode.get(x.errno, str(x.errno))
print("list", ",".join(n[13:] for n in os.listxattr(f) if n.startswith("user.ferryfs.")))
def has(n):
    try:
        os.getxattr(f, "user.ferryfs." + n)
        return True
    except OSError:
        return False
print("valued", ",".join(n for n in ("state", "source", "s3key", "etag", "migrated", "sha256",
                                     "synced", "error") if has(n)))
print("set-state", e(lambda: os.setxattr(f, "user.ferryfs.state", b"x")))
print("set-sync_verify", e(lambda: os.setxattr(m, "user.ferryfs.sync_verify", b"x")))
print("set-nosuch", e(lambda: os.setxattr(f, "user.ferryfs.nosuch", b"x")))
print("remove-state", e(lambda: os.removexattr(f, "user.ferryfs.state")))
print("get-stats-off-root", e(lambda: os.getxattr(f, "user.ferryfs.stats")))
print("get-migrate", e(lambda: os.getxattr(f, "user.ferryfs.migrate")))
print("get-stats-root", e(lambda: os.getxattr(m, "user.ferryfs.stats")))
PY
)
val() { printf '%s\n' "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
h_is "$(val list)" "$(val valued)" \
	"listxattr (xattr_list=1) lists the table's path names that have a value here, in its order"
h_ok "... state and source among them" grep -q '^state,source' <<<"$(val list)"
h_is "$(val set-state)" EROFS "setxattr of a read-only name: EROFS"
h_is "$(val set-sync_verify)" EROFS "setxattr of a read-only name of the root: EROFS"
h_is "$(val set-nosuch)" ENODATA "setxattr of an unknown name: ENODATA"
h_is "$(val remove-state)" EROFS "removexattr of a name of ours: EROFS"
h_is "$(val get-stats-off-root)" ENODATA "getxattr of a root name elsewhere: ENODATA"
h_is "$(val get-migrate)" ENODATA "getxattr of a name that is only written: ENODATA"
h_is "$(val get-stats-root)" ok "getxattr user.ferryfs.stats of the root answers"
h_is "$("$FERRYCTL" show "$M/onnfs.txt" | awk 'NR > 1 { print $1 }' | tr '\n' ,)" \
	"state,source,synced," "ferryctl show prints the path names that have a value, in order"

# ---------------------------------------------------------------- a) S3 stalled
h_is "$(getfattr --absolute-names --only-values -n user.ferryfs.source "$M/onnfs.txt")" nfs \
	"a) a file created through the mount is served by the new store"
stat "$M/s3only.bin" >/dev/null || h_bail "the S3-only file is not visible"
echo "--mode stall-before --stall 600" >"$CONTROL"
h_is "$(errmsg getfattr --absolute-names -n user.ferryfs.s3key "$M/onnfs.txt")" \
	"Input/output error" "a) S3 stalled: getxattr user.ferryfs.s3key of a new-store file: EIO"
h_is "$(errmsg getfattr --absolute-names -n user.ferryfs.state "$M/dir")" \
	"Input/output error" "a) S3 stalled: getxattr user.ferryfs.state of a new-store directory: EIO"
h_is "$(errmsg cat "$M/s3only.bin")" "Input/output error" \
	"a) S3 stalled: a read of an S3-only file: EIO"
h_ok "a) the proxy stalled requests" grep -q ' stall-before$' "$H_TMP/proxy.log"
rm -f "$CONTROL"
h_is "$(getfattr --absolute-names --only-values -n user.ferryfs.state "$M/dir")" nfs-only \
	"a) S3 back: the same getxattr answers again"

# ---------------------------------------------------------------- b) the new store gone
# A writer holds a file open; once the new store fails, it makes the calls named on its
# command line, printing "OP ok" or "OP ERRNO-NAME" for each, then "done"; it closes the
# file once told to.
cat >"$H_TMP/writer.py" <<'PY'
import errno, os, sys, time
m, name, flags = sys.argv[1:4]
ops = sys.argv[4:]
path = os.path.join(m, name)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"x" * 4096)
os.fsync(fd)
def wait(f):
    open(flags + ".ready" if f == "go" else flags + ".done", "w").close()
    while not os.path.exists(flags + "." + f):
        time.sleep(0.1)
calls = {
    "write": lambda: os.pwrite(fd, b"y" * 65536, 4096),
    "fsync": lambda: os.fsync(fd),
    "statfs": lambda: os.statvfs(m),
    "getxattr": lambda: os.getxattr(path, "user.ferryfs.state"),
    "close": lambda: os.close(fd),
}
wait("go")
for op in ops:
    try:
        calls[op]()
        print(op, "ok", flush=True)
    except OSError as e:
        print(op, errno.errorcode.get(e.errno, str(e.errno)), flush=True)
wait("fin")
if "close" not in ops:
    os.close(fd)
PY
# writer_under CASE FAIL MEND OP...: open CASE.bin, fail the new store by running FAIL,
# make the calls OP..., run MEND, let the writer close the file and end
writer_under() {
	local c=$1 fail=$2 mend=$3 out=$H_TMP/writer-$1.out fl=$H_TMP/flag-$1 wp
	shift 3
	timeout 400 "$PY3" "$H_TMP/writer.py" "$M" "$c.bin" "$fl" "$@" >"$out" 2>&1 &
	wp=$!
	H_PIDS+=($wp)
	h_wait_for 30 test -e "$fl.ready" || h_bail "the writer did not start: $(cat "$out")"
	$fail
	touch "$fl.go"
	h_wait_for 300 test -e "$fl.done"
	$mend
	touch "$fl.fin"
	wait $wp
	h_diag "b) $c: $(tr '\n' ' ' <"$out")"
}
res() { awk -v k="$2" '$1 == k { print $2 }' "$H_TMP/writer-$1.out"; }
# a hung server (stopped with SIGSTOP, its sockets open: the call times out, ETIMEDOUT
# inside the store). One call only: the store's fsync and close wait longer on a hung
# server than a test should (doc/reliability.md).
hang_nfs() { kill -STOP "$H_GANESHA_PID"; }
wake_nfs() { kill -CONT "$H_GANESHA_PID"; }
writer_under hung hang_nfs wake_nfs write
h_is "$(res hung write)" EIO "b) hung new store: write(2) through the handle: EIO"
h_ok "b) the new store answers again" h_wait_for 60 stat -f "$M"
# a dead server (nothing listening: connections refused)
writer_under stopped h_stop_nfs : write fsync statfs getxattr close
h_is "$(res stopped fsync)" EIO "b) stopped new store: fsync(2) through the handle: EIO"
h_is "$(res stopped statfs)" EIO "b) stopped new store: statfs(2) of the mount: EIO"
for o in write getxattr close; do
	h_ok "b) stopped new store: $o: EIO or success, nothing else ($(res stopped "$o"))" \
		bash -c "[ '$(res stopped "$o")' = EIO ] || [ '$(res stopped "$o")' = ok ]"
done
h_restart_nfs
h_ok "b) the new store back: statfs of the mount answers" h_wait_for 60 stat -f "$M"
h_ok "umount" h_umount
h_done
