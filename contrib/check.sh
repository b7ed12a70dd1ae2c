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
# (Re)configure when the tree is new or was configured with other flags than asked now
# (CI asks for --enable-werror: a warning in any build fails it).
flags="--quiet ${FERRY_CONFIGURE_FLAGS:-}"
if [ ! -f Makefile ] || [ "$(cat .configure-flags 2>/dev/null)" != "$flags" ]; then
	# shellcheck disable=SC2086
	../configure $flags
	printf '%s\n' "$flags" >.configure-flags
fi
make -j"$(nproc)" >/dev/null
# Two tests at a time (FERRY_CHECK_JOBS), sharing one rpcbind held for the whole run
# (see contrib/with-rpcbind.sh).
../contrib/with-rpcbind.sh make -j"${FERRY_CHECK_JOBS:-2}" check
