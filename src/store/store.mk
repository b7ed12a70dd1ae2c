# store/: the store interface (a table of function pointers) and its implementations:
# S3 (over s3/), NFS (over nfs/) and a local directory.
libferry_a_SOURCES += src/store/store.h src/store/store.c src/store/s3.c src/store/nfs.c \
	src/store/nfs_int.h src/store/nfs_handle.c src/store/nfs_ns.c src/store/local.c
