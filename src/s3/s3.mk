# The S3 client (SigV4 signing, XML parsing, pooled curl handles) and the S3 store.
libferry_a_SOURCES += src/store/s3.c
