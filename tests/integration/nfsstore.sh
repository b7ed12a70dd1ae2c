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
# criterion prints the TAP itself (one line per test). The restart suite is not in this
# binary (nfsrestart.sh runs it from tests/integ/nfsrestart); CI=true makes a test that
# cannot run here fail (cannot_run in nfsstore.c).
"$prog" --tap=/dev/stdout -j2 2>"$H_TMP/nfsstore.log"
rc=$?
if [ $rc != 0 ]; then
	H_TAP_FAIL=1
	tail -n 60 "$H_TMP/nfsstore.log" >&2
fi
exit $rc
