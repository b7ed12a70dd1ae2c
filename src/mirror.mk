# Write-back to S3 (spec 7): the journal of changes made through the mount (src/journal.c,
# called by fs.c) and its replay to S3 (src/mirror.c, a thread of the mount and `ferryctl
# sync-back --state`). doc/mirror.md describes both.
libferry_a_SOURCES += src/journal.c src/journal.h src/mirror.c src/mirror.h

check_PROGRAMS += tests/unit/test_mirror
TESTS += tests/unit/test_mirror
tests_unit_test_mirror_SOURCES = tests/unit/test_mirror.c
tests_unit_test_mirror_CFLAGS = $(unit_cflags)
tests_unit_test_mirror_LDADD = $(unit_ldadd)

ferryctl_SOURCES += src/ctl/cmd-syncback.c src/ctl/cmd-revert.c

TESTS += tests/integration/mirror.sh
EXTRA_DIST += tests/integration/mirror.sh
