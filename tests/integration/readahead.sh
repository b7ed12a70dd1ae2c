#!/bin/bash
# readahead.sh - read-ahead (src/view/readahead.c) over the real S3 store and a real s3rver:
# a 256 MiB object read through ra_read must hash like the seeded file, and an object
# replaced mid-read must give ESTALE and never a byte of the new object.
#
# RA_BENCH=N (not a test): instead, time N reads of the 256 MiB object by curl and by
# ra_read, alternately, and print the medians and their ratio (doc/readahead.md).
source "${abs_top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib/harness.sh"
PROG=$H_BUILD/tests/integ/readahead

h_init
[ -x "$PROG" ] || h_cannot "$PROG is not built (make check builds it)"
h_start_s3

big=$H_TMP/big.bin
head -c $((256 << 20)) /dev/urandom >"$big"
h_seed_s3 ra/big.bin "$big"
sha=$(sha256sum "$big" | cut -d' ' -f1)
export S3_URL=$H_S3_URL S3_BUCKET=$H_BUCKET RA_KEY=ra/big.bin RA_SHA256=$sha

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

if [ -n "${RA_BENCH:-}" ]; then
	: >"$H_TMP/curl.t"
	: >"$H_TMP/ra.t"
	for ((i = 0; i < RA_BENCH; i++)); do
		curl -s -o /dev/null -w '%{time_total}\n' "$H_S3_URL/$H_BUCKET/ra/big.bin" >>"$H_TMP/curl.t"
		RA_BENCH=1 "$PROG" --filter 'bench/*' 2>/dev/null | awk '/^ra_read/ { print $2 }' >>"$H_TMP/ra.t"
	done
	c=$(median <"$H_TMP/curl.t")
	r=$(median <"$H_TMP/ra.t")
	echo "# curl runs (s):    $(tr '\n' ' ' <"$H_TMP/curl.t")"
	echo "# ra_read runs (s): $(tr '\n' ' ' <"$H_TMP/ra.t")"
	echo "# median curl $c s, median ra_read $r s: ra_read at $(awk -v c="$c" -v r="$r" 'BEGIN { printf "%.2f", c / r }')x curl's speed"
	exit 0
fi

a=$H_TMP/a.bin
b=$H_TMP/b.bin
head -c $((64 << 20)) /dev/urandom >"$a"
head -c $((64 << 20)) /dev/urandom >"$b"
h_seed_s3 ra/replace.bin "$a"
export RA_KEY2=ra/replace.bin RA_FILE_A=$a
export RA_REPLACE_CMD="/usr/bin/aws --endpoint-url $H_S3_URL --no-cli-pager s3 cp --only-show-errors $b s3://$H_BUCKET/ra/replace.bin"

h_ok "256 MiB read through ra_read has the seeded file's SHA-256" \
	"$PROG" --filter 's3/sequential_read_matches_sha256'
h_ok "an object replaced mid-read gives ESTALE, never a byte of the new object" \
	"$PROG" --filter 's3/replaced_object_gives_estale_never_new_bytes'
h_is "$(h_aws s3api head-object --bucket "$H_BUCKET" --key ra/replace.bin --query ETag --output text | tr -d '"')" \
	"$(md5sum "$b" | cut -d' ' -f1)" "the replacement happened (awscli sees the new object)"
h_done
