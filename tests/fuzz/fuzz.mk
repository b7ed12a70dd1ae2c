# Fuzzing: libFuzzer targets for the code that reads hostile input (S3 XML, the config
# file, the credential endpoints' answers, key-to-path mapping, SigV4 canonicalization).
# Built only by `make fuzz` in a tree
# configured with CC=clang --enable-fuzzing; contrib/fuzz.sh runs each one for a while over
# its seed corpus (tests/fuzz/corpus/TARGET). doc/reliability.md has the results.
FUZZ_TARGETS = tests/fuzz/fuzz_xml tests/fuzz/fuzz_cfg tests/fuzz/fuzz_naming tests/fuzz/fuzz_sigv4 \
	tests/fuzz/fuzz_creds
EXTRA_PROGRAMS = $(FUZZ_TARGETS)
CLEANFILES += $(FUZZ_TARGETS)
tests_fuzz_fuzz_xml_SOURCES = tests/fuzz/fuzz_xml.c
tests_fuzz_fuzz_xml_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_xml_LDADD = $(FERRY_LIBS)
tests_fuzz_fuzz_cfg_SOURCES = tests/fuzz/fuzz_cfg.c
tests_fuzz_fuzz_cfg_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_cfg_LDADD = $(FERRY_LIBS)
tests_fuzz_fuzz_naming_SOURCES = tests/fuzz/fuzz_naming.c
tests_fuzz_fuzz_naming_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_naming_LDADD = $(FERRY_LIBS)
tests_fuzz_fuzz_sigv4_SOURCES = tests/fuzz/fuzz_sigv4.c
tests_fuzz_fuzz_sigv4_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_sigv4_LDADD = $(FERRY_LIBS)
tests_fuzz_fuzz_creds_SOURCES = tests/fuzz/fuzz_creds.c
tests_fuzz_fuzz_creds_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
tests_fuzz_fuzz_creds_LDADD = $(FERRY_LIBS)
EXTRA_DIST += tests/fuzz/corpus tests/fuzz/fuzz.mk tests/fuzz/fuzz.h

# make fuzz [FUZZ_TIME=seconds per target] [FUZZ_TARGET=name]
FUZZ_TIME = 30
if FUZZING
fuzz: $(FUZZ_TARGETS)
	FUZZ_TIME='$(FUZZ_TIME)' $(BASH) $(top_srcdir)/contrib/fuzz.sh $(abs_top_builddir) $(FUZZ_TARGET)
else
fuzz:
	@echo "make fuzz: configure with CC=clang ./configure --enable-fuzzing first" >&2; exit 1
endif
.PHONY: fuzz
clean-local: clean-fuzz
clean-fuzz:
	rm -rf tests/fuzz/work
.PHONY: clean-fuzz
