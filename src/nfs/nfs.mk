# nfs/: the NFS client: a pool of libnfs contexts, raw NFSv3 calls by handle, the handle cache.
libferry_a_SOURCES += src/nfs/pool.c src/nfs/pool.h src/nfs/raw3.c src/nfs/raw3.h \
	src/nfs/fhcache.c src/nfs/fhcache.h

check_PROGRAMS += tests/unit/test_fhcache
TESTS += tests/unit/test_fhcache
tests_unit_test_fhcache_SOURCES = tests/unit/test_fhcache.c
tests_unit_test_fhcache_CFLAGS = $(unit_cflags)
tests_unit_test_fhcache_LDADD = $(unit_ldadd)
