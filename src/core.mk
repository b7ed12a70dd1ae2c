# Core utilities: logging, helpers, configuration, counters, naming rules.
libferry_a_SOURCES += src/log.c src/log.h src/util.c src/util.h src/stats.c src/stats.h \
	src/cfg.c src/cfg.h src/naming.c src/naming.h src/store/store.h src/store/store.c



