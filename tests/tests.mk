# Integration tests: bash scripts reporting TAP, each starting its own s3rver and
# nfs-ganesha (tests/lib/harness.sh) and stopping them; the C clients some of them drive
# (tests/integ/); and the benchmark programs (tests/bench/, built by make check, run by
# contrib/bench*.sh, not tests).
integration_tests = \
	tests/integration/sigv4_botocore.sh tests/integration/s3client.sh \
	tests/integration/s3faults.sh tests/integration/nfsstore.sh \
	tests/integration/nfsrestart.sh tests/integration/nfsrtt.sh \
	tests/integration/fallthrough.sh tests/integration/kernelra.sh \
	tests/integration/readahead.sh tests/integration/posix.sh tests/integration/writes.sh \
	tests/integration/command.sh tests/integration/concurrency.sh \
	tests/integration/listcache.sh tests/integration/finish.sh \
	tests/integration/security.sh tests/integration/errno.sh tests/integration/creds.sh tests/integration/model.sh \
	tests/integration/prefix.sh \
	tests/integration/migrate.sh tests/integration/migrate-crash.sh \
	tests/integration/migrate-two.sh tests/integration/migrate-crawl.sh \
	tests/integration/rebuild.sh tests/integration/scan.sh \
	tests/integration/migrate-commit.sh tests/integration/migrate-verify.sh \
	tests/integration/revalidate.sh tests/integration/faults-s3.sh \
	tests/integration/faults-kill.sh tests/integration/faults-nfs.sh \
	tests/integration/load.sh tests/integration/mirror.sh \
	tests/integration/plan.sh tests/integration/sweep.sh \
	tests/integration/limits.sh tests/integration/demo.sh
# the S3 suites that matter, again against Ceph's RADOS Gateway (tests/lib/rgw.sh): each
# rgw-X.sh sets FERRY_S3=rgw and runs X.sh (rgw-sse.sh: what only RGW has, SSE-C and KMS)
integration_tests += \
	tests/integration/rgw-s3client.sh tests/integration/rgw-mirror.sh \
	tests/integration/rgw-revalidate.sh tests/integration/rgw-migrate-two.sh \
	tests/integration/rgw-finish.sh tests/integration/rgw-sse.sh
TESTS += $(integration_tests)
EXTRA_DIST += $(integration_tests)

# C clients of the integration tests
check_PROGRAMS += tests/integ/sigv4_sign tests/integ/s3client tests/integ/nfsstore \
	tests/integ/nfsrestart tests/integ/readahead tests/integ/journal_tool
tests_integ_sigv4_sign_SOURCES = tests/integ/sigv4_sign.c
tests_integ_sigv4_sign_LDADD = $(FERRY_LIBS)
tests_integ_s3client_SOURCES = tests/integ/s3client.c
tests_integ_s3client_CFLAGS = $(unit_cflags)
tests_integ_s3client_LDADD = $(unit_ldadd)
tests_integ_nfsstore_SOURCES = tests/integ/nfsstore.c
tests_integ_nfsstore_CFLAGS = $(unit_cflags)
tests_integ_nfsstore_LDADD = $(unit_ldadd)
# nfsrestart.sh's client: nfsstore.c with its "restart" suite compiled in (the nfsstore
# binary leaves it out, so that nfsstore.sh neither runs nor skips it)
tests_integ_nfsrestart_SOURCES = tests/integ/nfsstore.c
tests_integ_nfsrestart_CFLAGS = $(unit_cflags) -DNFSSTORE_RESTART
tests_integ_nfsrestart_LDADD = $(unit_ldadd)
tests_integ_readahead_SOURCES = tests/integ/readahead.c
tests_integ_readahead_CFLAGS = $(unit_cflags)
tests_integ_readahead_LDADD = $(unit_ldadd)
tests_integ_journal_tool_SOURCES = tests/integ/journal_tool.c
tests_integ_journal_tool_LDADD = $(FERRY_LIBS)

# benchmark programs: bench_ledger [-n RECORDS] [-d DIR] [--random]; bench_nfs and bench_s3
# are run by contrib/bench-nfs.sh and contrib/bench-s3.sh
check_PROGRAMS += tests/bench/bench_ledger tests/bench/bench_nfs tests/bench/bench_s3
tests_bench_bench_ledger_SOURCES = tests/bench/bench_ledger.c
tests_bench_bench_ledger_LDADD = $(FERRY_LIBS)
tests_bench_bench_nfs_SOURCES = tests/bench/bench_nfs.c
tests_bench_bench_nfs_LDADD = $(FERRY_LIBS)
tests_bench_bench_s3_SOURCES = tests/bench/bench_s3.c
tests_bench_bench_s3_LDADD = $(FERRY_LIBS)

# The migration rehearsal (contrib/rehearse.sh --quick, both scenarios): run by hand,
# `bash tests/integration/rehearse.sh` with abs_top_srcdir and abs_top_builddir set; not in
# TESTS yet (it does not run under make check's parallel harness).
EXTRA_DIST += tests/integration/rehearse.sh
