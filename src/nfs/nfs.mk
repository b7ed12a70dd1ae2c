# The NFS client (a pool of libnfs contexts), the NFS store and the local-directory store.
libferry_a_SOURCES += src/nfs/pool.c src/nfs/pool.h src/nfs/raw3.c src/nfs/raw3.h \
	src/nfs/fhcache.c src/nfs/fhcache.h src/store/nfs.c src/store/local.c

# Integration: the store table over NFSv3, NFSv4 and the local store (real nfs-ganesha),
# and the pool across a server restart.
check_PROGRAMS += tests/integ/nfsstore
tests_integ_nfsstore_SOURCES = tests/integ/nfsstore.c
tests_integ_nfsstore_CFLAGS = $(unit_cflags)
tests_integ_nfsstore_LDADD = $(unit_ldadd)
TESTS += tests/integration/nfsstore.sh tests/integration/nfsrestart.sh
EXTRA_DIST += tests/integration/nfsstore.sh tests/integration/nfsrestart.sh

# the NFS read benchmark (built by make check, run by contrib/bench-nfs.sh; not a test)
check_PROGRAMS += tests/bench/bench_nfs
tests_bench_bench_nfs_SOURCES = tests/bench/bench_nfs.c
tests_bench_bench_nfs_LDADD = $(FERRY_LIBS)

# The NFSv3 handle cache: its logic (unit) and its round-trip count and staleness rules
# over a real nfs-ganesha, counted by the server's own log.
check_PROGRAMS += tests/unit/test_fhcache
TESTS += tests/unit/test_fhcache tests/integration/nfsrtt.sh
tests_unit_test_fhcache_SOURCES = tests/unit/test_fhcache.c
tests_unit_test_fhcache_CFLAGS = $(unit_cflags)
tests_unit_test_fhcache_LDADD = $(unit_ldadd)
EXTRA_DIST += tests/integration/nfsrtt.sh
