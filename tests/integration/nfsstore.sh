#!/bin/bash
# nfsstore.sh - the new-store implementations against a real nfs-ganesha: the store test
# table (tests/integ/nfsstore.c) over an NFSv3 URL, an NFSv4 URL and the local store,
# plus 16 threads on a pool of 4, a 2100-entry readdir and the error cases.
source "$abs_top_srcdir/tests/lib/harness.sh"
h_init
h_start_nfs
mkdir -p "$H_TMP/local"
export FERRY_NFS_URL=$H_NFS_URL FERRY_NFS4_URL=$H_NFS4_URL FERRY_NFS_EXPORT=$H_EXPORT
export FERRY_LOCAL_DIR=$H_TMP/local
prog=$H_BUILD/tests/integ/nfsstore
[ -x "$prog" ] || h_bail "$prog is not built"
# criterion prints the TAP itself (one line per test); the restart suite skips here.
"$prog" --tap=/dev/stdout -j2 --filter '!(restart/*)' 2>"$H_TMP/nfsstore.log"
rc=$?
if [ $rc != 0 ]; then
	H_TAP_FAIL=1
	tail -n 60 "$H_TMP/nfsstore.log" >&2
fi
exit $rc
