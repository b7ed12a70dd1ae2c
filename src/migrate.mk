# The migrator (src/migrate.c: workers, throttling, crash cleanup of temporary files,
# controls) and the crawl (src/crawl.c: resumable, sharded recursive listing that queues
# objects). ferryctl's commands live in src/ctl/, one file per command.
# doc/migration.md describes both.
libferry_a_SOURCES += src/crawl.c src/crawl.h

check_PROGRAMS += tests/unit/test_crawl
TESTS += tests/unit/test_crawl
tests_unit_test_crawl_SOURCES = tests/unit/test_crawl.c
tests_unit_test_crawl_CFLAGS = $(unit_cflags)
tests_unit_test_crawl_LDADD = $(unit_ldadd)

# ferryctl: one file per command (src/ctl/cmd-*.c), the table in src/ferryctl.c
ferryctl_SOURCES += src/ctl/ctl.c src/ctl/ctl.h src/ctl/cmd-show.c src/ctl/cmd-stats.c \
	src/ctl/cmd-status.c src/ctl/cmd-migrate.c src/ctl/cmd-verify.c src/ctl/cmd-scan.c \
	src/ctl/cmd-rebuild.c src/ctl/cmd-finish.c

# Integration tests (real s3rver + nfs-ganesha through tests/lib/harness.sh)
TESTS += tests/integration/migrate.sh tests/integration/migrate-crash.sh \
	tests/integration/migrate-two.sh tests/integration/migrate-crawl.sh \
	tests/integration/rebuild.sh tests/integration/scan.sh \
	tests/integration/migrate-commit.sh tests/integration/migrate-verify.sh
EXTRA_DIST += tests/integration/migrate.sh tests/integration/migrate-crash.sh \
	tests/integration/migrate-two.sh tests/integration/migrate-crawl.sh \
	tests/integration/rebuild.sh tests/integration/scan.sh \
	tests/integration/migrate-commit.sh tests/integration/migrate-verify.sh

# A mixed fleet (spec 7): with revalidate=1, objects an old host overwrote in S3 after we
# migrated them are re-migrated, or kept beside ours as NAME.conflict-s3-* (src/fleet.c).
TESTS += tests/integration/revalidate.sh
EXTRA_DIST += tests/integration/revalidate.sh
