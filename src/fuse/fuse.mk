# fuse/: the FUSE operations, where every call from the kernel lands (fs.c), the open
# files (handle.c) and the user.ferryfs.* control plane (xattr.c).
libferry_a_SOURCES += src/fuse/fs.c src/fuse/fs.h src/fuse/xattr.c src/fuse/xattr.h \
	src/fuse/handle.c src/fuse/handle.h
