# Core utilities: logging, helpers, configuration, counters, naming rules.
libferry_a_SOURCES += src/log.c src/log.h src/util.c src/util.h src/stats.c src/stats.h \
	src/cfg.c src/cfg.h src/naming.c src/naming.h src/store/store.h src/store/store.c

check_PROGRAMS += tests/unit/test_util tests/unit/test_cfg tests/unit/test_naming
TESTS += tests/unit/test_util tests/unit/test_cfg tests/unit/test_naming
tests_unit_test_util_SOURCES = tests/unit/test_util.c
tests_unit_test_util_CFLAGS = $(unit_cflags)
tests_unit_test_util_LDADD = $(unit_ldadd)
tests_unit_test_cfg_SOURCES = tests/unit/test_cfg.c
tests_unit_test_cfg_CFLAGS = $(unit_cflags)
tests_unit_test_cfg_LDADD = $(unit_ldadd)
tests_unit_test_naming_SOURCES = tests/unit/test_naming.c
tests_unit_test_naming_CFLAGS = $(unit_cflags)
tests_unit_test_naming_LDADD = $(unit_ldadd)
