# s3/: the S3 client: SigV4 signing, the XML documents, the pooled retrying curl client.
libferry_a_SOURCES += src/s3/sigv4.c src/s3/sigv4.h src/s3/xml.c src/s3/xml.h \
	src/s3/client.c src/s3/client.h src/s3/client-impl.h src/s3/ops.c \
	src/s3/json.c src/s3/json.h src/s3/awsini.c src/s3/awsini.h src/s3/credsrc.c \
	src/s3/credsrc.h src/s3/creds.c src/s3/creds.h src/s3/sse.c src/s3/sse.h

check_PROGRAMS += tests/unit/test_sigv4 tests/unit/test_s3xml tests/unit/test_creds \
	tests/unit/test_sse
TESTS += tests/unit/test_sigv4 tests/unit/test_s3xml tests/unit/test_creds tests/unit/test_sse
tests_unit_test_sse_SOURCES = tests/unit/test_sse.c
tests_unit_test_sse_CFLAGS = $(unit_cflags)
tests_unit_test_sse_LDADD = $(unit_ldadd)
tests_unit_test_sigv4_SOURCES = tests/unit/test_sigv4.c
tests_unit_test_sigv4_CFLAGS = $(unit_cflags)
tests_unit_test_sigv4_LDADD = $(unit_ldadd)
tests_unit_test_s3xml_SOURCES = tests/unit/test_s3xml.c
tests_unit_test_s3xml_CFLAGS = $(unit_cflags)
tests_unit_test_s3xml_LDADD = $(unit_ldadd)
tests_unit_test_creds_SOURCES = tests/unit/test_creds.c
tests_unit_test_creds_CFLAGS = $(unit_cflags)
tests_unit_test_creds_LDADD = $(unit_ldadd)
