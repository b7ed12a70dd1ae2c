# The S3 client (SigV4 signing, XML parsing, pooled curl handles) and the S3 store.
libferry_a_SOURCES += src/store/s3.c

# sigv4 + xml: request signing and the S3 XML documents (pure logic), with their tests.
libferry_a_SOURCES += src/s3/sigv4.c src/s3/sigv4.h src/s3/xml.c src/s3/xml.h
check_PROGRAMS += tests/unit/test_sigv4 tests/unit/test_s3xml
TESTS += tests/unit/test_sigv4 tests/unit/test_s3xml
tests_unit_test_sigv4_SOURCES = tests/unit/test_sigv4.c
tests_unit_test_sigv4_CFLAGS = $(unit_cflags)
tests_unit_test_sigv4_LDADD = $(unit_ldadd)
tests_unit_test_s3xml_SOURCES = tests/unit/test_s3xml.c
tests_unit_test_s3xml_CFLAGS = $(unit_cflags)
tests_unit_test_s3xml_LDADD = $(unit_ldadd)
# the botocore cross-check: our signer driven from the shell, compared with botocore's
check_PROGRAMS += tests/integ/sigv4_sign
tests_integ_sigv4_sign_SOURCES = tests/integ/sigv4_sign.c
tests_integ_sigv4_sign_LDADD = $(FERRY_LIBS)
TESTS += tests/integration/sigv4_botocore.sh
EXTRA_DIST += tests/integration/sigv4_botocore.sh
# end sigv4 + xml

# client + store: the pooled, retrying S3 client and the S3 implementation of store.h,
# with the integration tests against s3rver (directly and through a fault proxy).
libferry_a_SOURCES += src/s3/client.c src/s3/client.h
check_PROGRAMS += tests/integ/s3client
tests_integ_s3client_SOURCES = tests/integ/s3client.c
tests_integ_s3client_CFLAGS = $(unit_cflags)
tests_integ_s3client_LDADD = $(unit_ldadd)
TESTS += tests/integration/s3client.sh tests/integration/s3faults.sh
EXTRA_DIST += tests/integration/s3client.sh tests/integration/s3faults.sh
# the S3 read benchmark (built by make check, run by contrib/bench-s3.sh; not a test)
check_PROGRAMS += tests/bench/bench_s3
tests_bench_bench_s3_SOURCES = tests/bench/bench_s3.c
tests_bench_bench_s3_LDADD = $(FERRY_LIBS)
# end client + store
