# ctl/: ferryctl, one file per command (cmd-*.c), the table in src/ferryctl.c.
ferryctl_SOURCES += src/ctl/ctl.c src/ctl/ctl.h src/ctl/cmd-show.c src/ctl/cmd-stats.c \
	src/ctl/cmd-status.c src/ctl/cmd-migrate.c src/ctl/cmd-verify.c src/ctl/cmd-scan.c \
	src/ctl/cmd-rebuild.c src/ctl/cmd-finish.c src/ctl/cmd-syncback.c src/ctl/cmd-revert.c \
	src/ctl/cmd-plan.c
