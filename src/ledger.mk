# The ledger: one LMDB environment per mount on local disk (files, inomap, queue, journal,
# crawl checkpoints, counters). doc/ledger.md describes the layout.
libferry_a_SOURCES += src/ledger.c src/ledger.h

check_PROGRAMS += tests/unit/test_ledger
TESTS += tests/unit/test_ledger
tests_unit_test_ledger_SOURCES = tests/unit/test_ledger.c
tests_unit_test_ledger_CFLAGS = $(unit_cflags)
tests_unit_test_ledger_LDADD = $(unit_ldadd)

# the 11-million-record benchmark (built by make check, run by hand; not a test):
#   tests/bench/bench_ledger [-n RECORDS] [-d DIR] [--random]
check_PROGRAMS += tests/bench/bench_ledger
tests_bench_bench_ledger_SOURCES = tests/bench/bench_ledger.c
tests_bench_bench_ledger_LDADD = $(FERRY_LIBS)
