# base/: logging, helpers, configuration, counters, naming rules, the names of the
# user.ferryfs.* xattrs (no dependency on any other subsystem).
libferry_a_SOURCES += src/base/log.c src/base/log.h src/base/util.c src/base/util.h \
	src/base/stats.c src/base/stats.h src/base/cfg.c src/base/cfg.h \
	src/base/naming.c src/base/naming.h src/base/xattrs.c src/base/xattrs.h

check_PROGRAMS += tests/unit/test_util tests/unit/test_cfg tests/unit/test_naming \
	tests/unit/test_xattrs
TESTS += tests/unit/test_util tests/unit/test_cfg tests/unit/test_naming tests/unit/test_xattrs
tests_unit_test_util_SOURCES = tests/unit/test_util.c
tests_unit_test_util_CFLAGS = $(unit_cflags)
tests_unit_test_util_LDADD = $(unit_ldadd)
tests_unit_test_cfg_SOURCES = tests/unit/test_cfg.c
tests_unit_test_cfg_CFLAGS = $(unit_cflags)
tests_unit_test_cfg_LDADD = $(unit_ldadd)
tests_unit_test_naming_SOURCES = tests/unit/test_naming.c
tests_unit_test_naming_CFLAGS = $(unit_cflags)
tests_unit_test_naming_LDADD = $(unit_ldadd)
tests_unit_test_xattrs_SOURCES = tests/unit/test_xattrs.c
tests_unit_test_xattrs_CFLAGS = $(unit_cflags)
tests_unit_test_xattrs_LDADD = $(unit_ldadd)
