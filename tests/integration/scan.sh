#!/bin/bash
# ferryctl scan (spec 2) over keys s3rver can store that the mount must not show: segments
# that begin with the reserved prefix .ferryfs (unreachable) and objects with a directory
# of the same name (shadowed: the directory wins). scan lists each once, the stats count
# the unreachable ones, the mount shows none of them, and a crawl copies none of them.
# (s3rver cannot store `a//b`, `..`, segments over 255 bytes or keys over 4095 bytes:
# tests/unit/test_naming.c covers those over listings built in the test.)
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init fuse
h_start_s3
h_start_nfs
CTL=$FERRYCTL

for k in sc/ok.txt sc/.ferryfs-hidden/a.txt sc/.ferryfs.x sc/d/.ferryfsy sc/d/seen.txt \
	sc/a sc/a/b sc/b/c sc/b; do
	printf '%s\n' "$k" | h_seed_s3 "$k"
done
h_is "$(h_aws s3 ls --recursive "s3://$H_BUCKET/sc/" | wc -l)" 9 "s3rver holds the 9 keys"

h_mount workers=2
M=$H_MNT
E=$H_EXPORT
stat_of() { getfattr --absolute-names --only-values -n user.ferryfs.stats "$M" | awk -v k="$1" '$1 == k { print $2 }'; }

h_is "$(ls -A "$M/sc" | tr '\n' ' ')" "a b d ok.txt " "the mount shows neither .ferryfs names nor the shadowed objects as files"
h_is "$(stat -c %F "$M/sc/a") $(stat -c %F "$M/sc/b")" "directory directory" "a name that is both an object and a directory is a directory"
h_is "$(cat "$M/sc/a/b")" "sc/a/b" "... with its objects inside"

"$CTL" scan "$M" >"$H_TMP/scan.txt" 2>"$H_TMP/scan.err"
h_is "$?" 0 "ferryctl scan exits 0"
h_diag "$(cat "$H_TMP/scan.txt" "$H_TMP/scan.err")"
h_is "$(sort "$H_TMP/scan.txt" | tr '\n' '|')" \
	"shadowed sc/a|shadowed sc/b|unreachable sc/.ferryfs-hidden/a.txt|unreachable sc/.ferryfs.x|unreachable sc/d/.ferryfsy|" \
	"scan lists the 3 unreachable and the 2 shadowed keys, each once"
h_ok "... having listed every key" grep -q '^9 keys listed' "$H_TMP/scan.err"
h_ok "the stats count 3 unreachable keys at least" test "$(stat_of unreachable)" -ge 3

h_ok "a crawl of the whole bucket" "$CTL" migrate --all --wait "$M"
h_is "$(cd "$E/sc" && find . -type f | sort | tr '\n' ' ')" "./a/b ./b/c ./d/seen.txt ./ok.txt " \
	"the crawl copied every reachable object and none of the others"
h_ok "umount" h_umount
h_done
