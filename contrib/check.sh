#!/bin/bash
# check.sh - the README's test command: install what is missing, build in ./build, and run
# the whole test suite (criterion unit tests and integration tests over a real s3rver and
# nfs-ganesha that the tests start themselves). Exit status is make check's.
set -euo pipefail
cd "$(dirname "$0")/.."
contrib/install-deps.sh
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure --quiet ${FERRY_CONFIGURE_FLAGS:-}
make -j"$(nproc)" >/dev/null
# Tests run two at a time (FERRY_CHECK_JOBS): each integration test starts its own s3rver
# and nfs-ganesha on free ports in its own temporary directory, with its own FUSE mount.
# They share rpcbind, which nfs-ganesha needs only to register at its start (clients are
# given the ports): it is started here for the whole run, so that no test's cleanup stops
# it while another's nfs-ganesha starts, and stopped at the end if it was started here.
started_rpcbind=0
if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
	rpcbind -w
	started_rpcbind=1
	for _ in $(seq 50); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
fi
stop_rpcbind() {
	[ "$started_rpcbind" = 1 ] || return 0
	pkill -x rpcbind || true
	for _ in $(seq 50); do pgrep -x rpcbind >/dev/null || break; sleep 0.1; done
}
trap stop_rpcbind EXIT
make -j"${FERRY_CHECK_JOBS:-2}" check
