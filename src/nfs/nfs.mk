# The NFS client (a pool of libnfs contexts), the NFS store and the local-directory store.
libferry_a_SOURCES += src/store/nfs.c src/store/local.c
