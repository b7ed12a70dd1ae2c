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
# Two tests at a time (FERRY_CHECK_JOBS), sharing one rpcbind held for the whole run
# (see contrib/with-rpcbind.sh).
../contrib/with-rpcbind.sh make -j"${FERRY_CHECK_JOBS:-2}" check
