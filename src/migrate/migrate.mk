# migrate/: the migrator (workers, throttling, crash cleanup of temporary files), the crawl
# (resumable, sharded listing that queues objects) and the fleet (revalidation, finish).
# doc/migration.md describes them.
libferry_a_SOURCES += src/migrate/migrate.c src/migrate/migrate.h src/migrate/crawl.c \
	src/migrate/crawl.h src/migrate/fleet.c src/migrate/fleet.h \
	src/migrate/plan.c src/migrate/plan.h src/migrate/sweep.c \
	src/migrate/sweep.h

check_PROGRAMS += tests/unit/test_crawl tests/unit/test_plan tests/unit/test_sweep
TESTS += tests/unit/test_crawl tests/unit/test_plan tests/unit/test_sweep
tests_unit_test_crawl_SOURCES = tests/unit/test_crawl.c
tests_unit_test_crawl_CFLAGS = $(unit_cflags)
tests_unit_test_crawl_LDADD = $(unit_ldadd)
tests_unit_test_plan_SOURCES = tests/unit/test_plan.c
tests_unit_test_plan_CFLAGS = $(unit_cflags)
tests_unit_test_plan_LDADD = $(unit_ldadd)
tests_unit_test_sweep_SOURCES = tests/unit/test_sweep.c
tests_unit_test_sweep_CFLAGS = $(unit_cflags)
tests_unit_test_sweep_LDADD = $(unit_ldadd)
