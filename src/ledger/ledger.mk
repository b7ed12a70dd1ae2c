# ledger/: one LMDB environment per mount on local disk (files, inode map, queue, journal,
# crawl checkpoints, counters). doc/ledger.md describes the layout.
libferry_a_SOURCES += src/ledger/ledger_file.c src/ledger/ledger.h

check_PROGRAMS += tests/unit/test_ledger
TESTS += tests/unit/test_ledger
tests_unit_test_ledger_SOURCES = tests/unit/test_ledger.c
tests_unit_test_ledger_CFLAGS = $(unit_cflags)
tests_unit_test_ledger_LDADD = $(unit_ldadd)
