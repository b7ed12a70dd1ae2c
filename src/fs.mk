# The filesystem: FUSE operations (fs.c) and the namespace router (route.c) that decides
# which store serves a path.
libferry_a_SOURCES += src/fs.c src/fs.h src/route.c src/route.h src/whiteout.c src/whiteout.h \
	src/copy.c src/copy.h src/ns.c src/ns.h src/dcache.c src/dcache.h src/migrate.c src/migrate.h \
	src/fleet.c src/fleet.h

check_PROGRAMS += tests/unit/test_route
TESTS += tests/unit/test_route
tests_unit_test_route_SOURCES = tests/unit/test_route.c
tests_unit_test_route_CFLAGS = $(unit_cflags)
tests_unit_test_route_LDADD = $(unit_ldadd)

TESTS += tests/integration/fallthrough.sh
EXTRA_DIST += tests/integration/fallthrough.sh
