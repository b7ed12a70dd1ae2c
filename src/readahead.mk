# Read-ahead for reads served by a store (S3-only files): src/readahead.c, with unit tests
# over an in-memory store (tests/unit/memstore.c) and an integration test over s3rver.
libferry_a_SOURCES += src/readahead.c src/readahead.h

check_PROGRAMS += tests/unit/test_readahead
TESTS += tests/unit/test_readahead
tests_unit_test_readahead_SOURCES = tests/unit/test_readahead.c tests/unit/memstore.c tests/unit/memstore.h
tests_unit_test_readahead_CFLAGS = $(unit_cflags)
tests_unit_test_readahead_LDADD = $(unit_ldadd)

# integration: a 256 MiB object read through ra_read from s3rver, checked by SHA-256, and an
# object replaced mid-read (tests/integration/readahead.sh runs tests/integ/readahead).
check_PROGRAMS += tests/integ/readahead
tests_integ_readahead_SOURCES = tests/integ/readahead.c
tests_integ_readahead_CFLAGS = $(unit_cflags)
tests_integ_readahead_LDADD = $(unit_ldadd)
TESTS += tests/integration/readahead.sh
EXTRA_DIST += tests/integration/readahead.sh
