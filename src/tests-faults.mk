# Fault injection at the level of the mount (issue 8, doc/reliability.md "Faults"): S3
# failing or unreachable (tests/tools/faultproxy.py), nfs-ganesha restarted and its export
# full, the daemon killed with SIGKILL during migration. Each starts its own servers.
TESTS += tests/integration/faults-s3.sh
EXTRA_DIST += tests/integration/faults-s3.sh
TESTS += tests/integration/faults-kill.sh
EXTRA_DIST += tests/integration/faults-kill.sh
TESTS += tests/integration/faults-nfs.sh
EXTRA_DIST += tests/integration/faults-nfs.sh
