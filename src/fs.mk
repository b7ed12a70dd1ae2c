# The filesystem: FUSE operations (fs.c) and the namespace router (route.c) that decides
# which store serves a path.
libferry_a_SOURCES += src/fs.c src/fs.h src/route.c src/route.h src/whiteout.c src/whiteout.h \
	src/copy.c src/copy.h src/ns.c src/ns.h src/dcache.c src/dcache.h src/migrate.c src/migrate.h \
	src/fleet.c src/fleet.h src/links.c src/links.h

check_PROGRAMS += tests/unit/test_route tests/unit/test_links
TESTS += tests/unit/test_route tests/unit/test_links
tests_unit_test_route_SOURCES = tests/unit/test_route.c
tests_unit_test_route_CFLAGS = $(unit_cflags)
tests_unit_test_route_LDADD = $(unit_ldadd)
tests_unit_test_links_SOURCES = tests/unit/test_links.c
tests_unit_test_links_CFLAGS = $(unit_cflags)
tests_unit_test_links_LDADD = $(unit_ldadd)

TESTS += tests/integration/fallthrough.sh tests/integration/kernelra.sh
EXTRA_DIST += tests/integration/fallthrough.sh tests/integration/kernelra.sh
