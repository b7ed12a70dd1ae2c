# writeback/: the journal of changes made through the mount and its replay to S3 (the
# mirror: a thread of the mount and ferryctl sync-back). doc/mirror.md describes both.
libferry_a_SOURCES += src/writeback/journal.c src/writeback/journal.h \
	src/writeback/mirror.c src/writeback/mirror.h src/writeback/mirror-int.h \
	src/writeback/reconcile.c \
	src/writeback/conflict.c src/writeback/conflict.h

check_PROGRAMS += tests/unit/test_mirror
TESTS += tests/unit/test_mirror
tests_unit_test_mirror_SOURCES = tests/unit/test_mirror.c
tests_unit_test_mirror_CFLAGS = $(unit_cflags)
tests_unit_test_mirror_LDADD = $(unit_ldadd)
