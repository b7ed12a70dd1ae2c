#!/bin/bash
# with-rpcbind.sh CMD [ARG...] - run CMD with rpcbind running: started here when none
# answers (and stopped once CMD is done), left alone when one does. Exit status: CMD's.
#
# Why: the integration tests run two at a time (contrib/check.sh), each with its own
# s3rver, nfs-ganesha (free ports, own export) and FUSE mount. The one service they share
# is rpcbind, which nfs-ganesha needs only to register at its start (every client is
# given the ports). Held here for the whole run, no test's cleanup can stop it while
# another test's nfs-ganesha is starting (tests/lib/harness.sh stops only an rpcbind it
# started itself).
set -u
started=0
if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
	rpcbind -w || { echo "with-rpcbind: rpcbind did not start" >&2; exit 1; }
	started=1
	for _ in $(seq 100); do rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && break; sleep 0.1; done
fi
"$@"
rc=$?
if [ "$started" = 1 ]; then
	pkill -x rpcbind
	for _ in $(seq 100); do pgrep -x rpcbind >/dev/null || break; sleep 0.1; done
fi
exit "$rc"
