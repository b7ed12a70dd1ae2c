# Fault injection at the level of the mount (issue 8, doc/reliability.md "Faults"): S3
# failing or unreachable (tests/tools/faultproxy.py), nfs-ganesha restarted and its export
# full, the daemon killed with SIGKILL during migration. Each starts its own servers.
TESTS += tests/integration/faults-s3.sh
EXTRA_DIST += tests/integration/faults-s3.sh
TESTS += tests/integration/faults-kill.sh
EXTRA_DIST += tests/integration/faults-kill.sh
TESTS += tests/integration/faults-nfs.sh
EXTRA_DIST += tests/integration/faults-nfs.sh
# Load (issue 8, doc/reliability.md "Load"): 16 threads of mixed reads and writes checked
# against a model (tests/tools/load.py) while migration and write-back run; afterwards the
# mount, S3 and the export hold the model's bytes and the daemon's RSS is back near baseline.
TESTS += tests/integration/load.sh
EXTRA_DIST += tests/integration/load.sh
# nfsrestart.sh's client: tests/integ/nfsstore.c with its "restart" suite compiled in
# (the nfsstore binary leaves it out, so that nfsstore.sh neither runs nor skips it).
check_PROGRAMS += tests/integ/nfsrestart
tests_integ_nfsrestart_SOURCES = tests/integ/nfsstore.c
tests_integ_nfsrestart_CFLAGS = $(unit_cflags) -DNFSSTORE_RESTART
tests_integ_nfsrestart_LDADD = $(unit_ldadd)
