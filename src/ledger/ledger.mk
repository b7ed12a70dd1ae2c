# ledger/: one LMDB environment per mount on local disk (files, inode map, queue, journal,
# crawl checkpoints, counters). doc/ledger.md describes the layout. ledger_int.h is private
# to this folder.
libferry_a_SOURCES += src/ledger/ledger.h src/ledger/ledger_int.h src/ledger/ledger_txn.c \
	src/ledger/ledger_codec.c src/ledger/ledger_open.c src/ledger/ledger_file.c \
	src/ledger/ledger_ino.c src/ledger/ledger_queue.c src/ledger/ledger_journal.c \
	src/ledger/ledger_ckpt.c src/ledger/ledger_stats.c \
	src/ledger/ledger_state.c

check_PROGRAMS += tests/unit/test_ledger
TESTS += tests/unit/test_ledger
tests_unit_test_ledger_SOURCES = tests/unit/test_ledger.c
tests_unit_test_ledger_CFLAGS = $(unit_cflags)
tests_unit_test_ledger_LDADD = $(unit_ldadd)
