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
