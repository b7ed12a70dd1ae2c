# view/: the merged namespace: which store serves a path (route), the lookup and listing
# caches (dcache), whiteouts, namespace changes (ns), copy-up (copy), hard-link names
# (links), read-ahead over a store (readahead) and the mount context (ferry.h).
libferry_a_SOURCES += src/view/route.c src/view/route.h src/view/dcache.c src/view/dcache.h \
	src/view/whiteout.c src/view/whiteout.h src/view/ns.c src/view/ns.h \
	src/view/copy.c src/view/copy.h src/view/links.c src/view/links.h \
	src/view/readahead.c src/view/readahead.h src/view/ferry.h

check_PROGRAMS += tests/unit/test_route tests/unit/test_links tests/unit/test_readahead
TESTS += tests/unit/test_route tests/unit/test_links tests/unit/test_readahead
tests_unit_test_route_SOURCES = tests/unit/test_route.c
tests_unit_test_route_CFLAGS = $(unit_cflags)
tests_unit_test_route_LDADD = $(unit_ldadd)
tests_unit_test_links_SOURCES = tests/unit/test_links.c
tests_unit_test_links_CFLAGS = $(unit_cflags)
tests_unit_test_links_LDADD = $(unit_ldadd)
tests_unit_test_readahead_SOURCES = tests/unit/test_readahead.c tests/unit/memstore.c \
	tests/unit/memstore.h
tests_unit_test_readahead_CFLAGS = $(unit_cflags)
tests_unit_test_readahead_LDADD = $(unit_ldadd)
