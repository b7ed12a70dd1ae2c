#!/bin/bash
# How a copy is verified (spec 6: size; MD5 for single-part ETags; SHA-256 recorded for
# all), over a real s3rver and nfs-ganesha, with tests/tools/faultproxy.py inverting one
# byte of the body of every GET of one object (headers, ETag and length untouched):
#   - a single-part object (its ETag is the body's MD5) whose bytes arrive corrupted is
#     never published: the MD5 check fails the copy, the name stays free on NFS, no
#     temporary file is left, the state says failed and the log says why;
#   - an object with a multipart ETag ("MD5-of-part-MD5s-N", which no MD5 of the body can
#     match; shown by the proxy's multipart-etag mode, as s3rver does not make them)
#     migrates byte-identical without an MD5 being computed (the copy learns the ETag from
#     the GET's headers before the first byte), and ferryctl verify compares it with S3.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL
state() { getfattr --absolute-names --only-values -n user.ferryfs.state "$1" 2>/dev/null; }

# sp.bin by one PUT; mp.bin by aws s3 cp (20 MB: a multipart upload). s3rver gives every
# object the MD5 of its body as ETag, so part 2 sees S3 through the proxy's
# multipart-etag mode, which shows the ETags as AWS S3 shows a multipart upload's.
mkdir -p "$H_TMP/seed"
head -c 3000000 /dev/urandom >"$H_TMP/seed/sp.bin"
h_seed_s3_tree "$H_TMP/seed" v || h_bail "seeding sp.bin"
head -c 20000000 /dev/urandom >"$H_TMP/mp.bin"
h_seed_s3 v/mp.bin "$H_TMP/mp.bin" || h_bail "seeding mp.bin"
sp_etag=$(h_aws s3api head-object --bucket "$H_BUCKET" --key v/sp.bin --query ETag --output text | tr -d '"')
h_is "$sp_etag" "$(md5sum <"$H_TMP/seed/sp.bin" | cut -d' ' -f1)" "sp.bin has a single-part ETag (its MD5)"

# proxy NAME MODE [ARGS...]: a faultproxy in front of s3rver; its URL in PROXY_URL
proxy() {
	local name=$1 mode=$2
	shift 2
	rm -f "$H_TMP/$name.port"
	"$PY3" "$H_SRC/tests/tools/faultproxy.py" --upstream "$H_S3_URL" --mode "$mode" "$@" \
		--port-file "$H_TMP/$name.port" --log "$H_TMP/$name.log" &
	H_PIDS+=($!)
	h_wait_for 20 test -s "$H_TMP/$name.port" || h_bail "faultproxy did not start"
	PROXY_URL=http://127.0.0.1:$(cat "$H_TMP/$name.port")
}

# --- 1. a single-part object whose bytes arrive corrupted ---
proxy bad corrupt-body --after 1234567 --methods GET --match sp.bin
FERRYFS_MIGRATE_RETRIES=1 H_LOG_LEVEL=debug H_S3_URL=$PROXY_URL \
	h_mount workers=2,mirror=off,migrate_on=never
M=$H_MNT E=$H_EXPORT
"$CTL" migrate --wait "$M/v/sp.bin" >"$H_TMP/out" 2>&1
h_ok "the proxy did corrupt a GET of sp.bin" grep -q 'corrupt-body: byte 1234567 inverted' "$H_TMP/bad.log"
h_ok "the corrupted copy is refused: the MD5 does not match the ETag" \
	h_wait_for 30 grep -q "copy /v/sp.bin: MD5 [0-9a-f]* does not match the ETag $sp_etag" "$H_TMP/ferryfs.log"
h_ok "... its state says failed" \
	h_wait_for 30 bash -c "[ \"\$(getfattr --only-values -n user.ferryfs.state '$M/v/sp.bin')\" = failed ]"
h_ok "nothing was published under its name on NFS" test ! -e "$E/v/sp.bin"
h_is "$(find "$E" -name '.ferryfs.tmp.*' | wc -l)" 0 "no temporary file is left"
h_umount

# --- 2. a multipart ETag ---
proxy mp multipart-etag
H_STATE=$H_TMP/state2 H_LOG_LEVEL=debug H_S3_URL=$PROXY_URL \
	h_mount workers=2,mirror=off,migrate_on=never
mp_etag=$(getfattr --absolute-names --only-values -n user.ferryfs.etag "$M/v/mp.bin" 2>/dev/null)
h_ok "the mount sees mp.bin with a multipart ETag (\"$mp_etag\")" bash -c "[[ '$mp_etag' == *-3 ]]"
h_ok "ferryctl migrate --wait of mp.bin" "$CTL" migrate --wait "$M/v/mp.bin"
h_is "$(state "$M/v/mp.bin")" migrated "mp.bin is migrated"
h_ok "... byte-identical on NFS (read directly)" cmp "$E/v/mp.bin" "$H_TMP/mp.bin"
h_ok "... with no MD5 computed for its multipart ETag (debug log)" \
	grep -q "copy: ETag $mp_etag is a multipart one: checked by size, no MD5" "$H_TMP/ferryfs.log"
h_ok "... read through the proxy (the If-Match pins, mapped back, held)" \
	grep -q "GET .*v/mp.bin" "$H_TMP/mp.log"
h_ok "ferryctl verify compares mp.bin with S3 and finds it equal" "$CTL" verify "$M/v/mp.bin"
h_umount
h_done
