# Integration tests of the unified mount (issue 4): the same syscalls on a local directory
# and on ferryfs (tests/tools/posix_compare.py), the write path point by point, the ferryfs
# command, and concurrent readers and writers. Each starts its own s3rver and nfs-ganesha.
TESTS += tests/integration/posix.sh tests/integration/writes.sh \
	tests/integration/command.sh tests/integration/concurrency.sh
EXTRA_DIST += tests/integration/posix.sh tests/integration/writes.sh \
	tests/integration/command.sh tests/integration/concurrency.sh

# The listing cache (issue 7): warm readdirs without S3, changes through the mount at once.
TESTS += tests/integration/listcache.sh
EXTRA_DIST += tests/integration/listcache.sh

# The end of a migration (spec 7): ferryctl finish (src/ctl/cmd-finish.c, src/fleet.c).
TESTS += tests/integration/finish.sh
EXTRA_DIST += tests/integration/finish.sh
# a helper of finish.sh: journal entries in an unmounted ledger
check_PROGRAMS += tests/integ/journal_tool
tests_integ_journal_tool_SOURCES = tests/integ/journal_tool.c
tests_integ_journal_tool_LDADD = $(FERRY_LIBS)
# Security (issue 8): the secret never leaks, allow_other permissions, escaping symlinks, TLS.
TESTS += tests/integration/security.sh
EXTRA_DIST += tests/integration/security.sh
# Model-based testing (issue 8): random operations against a local directory (Hypothesis),
# fsx-style data integrity on large files (tests/tools/model.py, tests/tools/fsx.py).
TESTS += tests/integration/model.sh
EXTRA_DIST += tests/integration/model.sh
# s3_prefix (spec 9): the prefix's keys at the root, write-back and migration under it.
TESTS += tests/integration/prefix.sh
EXTRA_DIST += tests/integration/prefix.sh
