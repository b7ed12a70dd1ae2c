# fuse/: the FUSE operations, where every call from the kernel lands.
libferry_a_SOURCES += src/fuse/fs.c src/fuse/fs.h
