/* tests/integ/nfsstore.c - the new-store implementations against real servers: the same
 * table of checks runs over an NFSv3 URL, an NFSv4 URL (both to one nfs-ganesha started
 * by tests/integration/nfsstore.sh) and the local-directory store.
 *
 * Environment: FERRY_NFS_URL (v3), FERRY_NFS4_URL (v4), FERRY_NFS_EXPORT (the exported
 * directory on this host), FERRY_LOCAL_DIR (a scratch directory for the local store).
 * A suite whose variable is unset is skipped, or fails under CI=true (cannot_run).
 *
 * The "restart" suite is compiled in only with -DNFSSTORE_RESTART (the binary
 * tests/integ/nfsrestart, driven by tests/integration/nfsrestart.sh): criterion reports a
 * test its --filter leaves out as skipped, so nfsstore.sh's binary does not hold it. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/stats.h"
#include "store/store.h"
#include "base/util.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

/* cannot_run("why", ...): this test cannot run here; a skip, but a failure under CI=true
 * (where a skipped test would hide a missing setup step). */
#define cannot_run(...)                                                                   \
	do {                                                                              \
		const char *ci_ = getenv("CI");                                           \
		if (ci_ && strcmp(ci_, "true") == 0)                                      \
			cr_assert_fail("cannot run under CI: " __VA_ARGS__);              \
		cr_skip_test(__VA_ARGS__);                                                \
	} while (0)

enum kind { NFS3, NFS4, LOCAL };
static enum kind g_kind;
static struct ferry_config g_cfg;
static char g_base[256];

static const char *kind_env(enum kind k)
{
	return k == NFS3 ? "FERRY_NFS_URL" : k == NFS4 ? "FERRY_NFS4_URL" : "FERRY_LOCAL_DIR";
}

static struct store *open_store(const char *url, unsigned conns)
{
	struct store *st = NULL;
	cfg_init(&g_cfg);
	g_cfg.nfs = (char *)url;
	g_cfg.nfs_connections = conns;
	cr_assert_eq(store_new_nfs_side(&g_cfg, &st), 0, "store for %s", url);
	cr_assert_eq(store_probe(st), 0, "probe %s", url);
	return st;
}

/* base + "/" + rel, in a static ring of buffers (tests use a few at once). */
static const char *P(const char *rel)
{
	static char ring[8][1024];
	static int i;
	char *b = ring[i++ % 8];
	snprintf(b, 1024, "%s/%s", g_base, rel);
	return b;
}

static void run(enum kind k, const char *name, void (*fn)(struct store *))
{
	const char *url = getenv(kind_env(k));
	if (!url || !*url)
		cannot_run("%s is not set", kind_env(k));
	g_kind = k;
	log_init(LOG_TO_STDERR, getenv("FERRY_DEBUG") ? LOG_DEBUG : LOG_WARNING, "nfsstore");
	struct store *st = open_store(url, 4);
	snprintf(g_base, sizeof(g_base), "/%s-%s-%ld", name,
		 k == NFS3 ? "v3" : k == NFS4 ? "v4" : "local", (long)getpid());
	cr_assert_eq(store_mkdir(st, g_base, 0755), 0, "mkdir %s", g_base);
	fn(st);
	store_destroy(st);
}

#define STORE_TEST(name)                                                          \
	static void name(struct store *st);                                       \
	Test(nfs3, name, .timeout = 180) { run(NFS3, #name, name); }              \
	Test(nfs4, name, .timeout = 180) { run(NFS4, #name, name); }              \
	Test(local, name, .timeout = 180) { run(LOCAL, #name, name); }            \
	static void name(struct store *st)

static void put_file(struct store *st, const char *path, const void *data, size_t len)
{
	struct store_file *f;
	cr_assert_eq(store_open(st, path, O_CREAT | O_WRONLY | O_TRUNC, 0644, NULL, &f), 0, "%s",
		     path);
	cr_assert_eq(store_pwrite(st, f, data, len, 0), (ssize_t)len);
	cr_assert_eq(store_close(st, f), 0);
}

static char *get_file(struct store *st, const char *path, size_t *len)
{
	struct store_file *f;
	struct store_attr a;
	cr_assert_eq(store_open(st, path, O_RDONLY, 0, NULL, &f), 0, "open %s", path);
	cr_assert_eq(store_fstat(st, f, &a), 0);
	char *b = malloc(a.size + 1);
	ssize_t n = store_pread(st, f, b, a.size + 1, 0);
	cr_assert_eq(n, (ssize_t)a.size, "pread %zd of %llu", n, (unsigned long long)a.size);
	b[n] = '\0';
	cr_assert_eq(store_close(st, f), 0);
	*len = (size_t)n;
	return b;
}

static void pattern(unsigned char *b, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (unsigned char)(x >> 16);
	}
}

/* ---- the table ---- */

STORE_TEST(stat_and_paths)
{
	struct store_attr a;
	cr_assert_eq(store_stat(st, "/", &a), 0);
	cr_assert(S_ISDIR(a.mode));
	cr_assert_neq(a.ino, 0);
	cr_assert_eq(store_stat(st, P("nope"), &a), -ENOENT);
	cr_assert_eq(store_stat(st, "/a/../b", &a), -EINVAL);
	cr_assert_eq(store_stat(st, "/a//b", &a), -EINVAL);
	cr_assert_eq(store_stat(st, "a", &a), -EINVAL);
	cr_assert_eq(store_stat(st, "/a/.", &a), -EINVAL);
	cr_assert_eq(store_mkdir(st, "/..", 0755), -EINVAL);
	cr_assert_eq(store_stat(st, g_base, &a), 0);
	cr_assert(S_ISDIR(a.mode));
	cr_assert_eq(a.mode & 07777, 0755);
}

STORE_TEST(create_write_read)
{
	struct store_file *f, *g;
	struct store_attr a, b;
	char buf[64];

	cr_assert_eq(store_open(st, P("f"), O_CREAT | O_EXCL | O_RDWR, 0640, NULL, &f), 0);
	cr_assert_eq(store_open(st, P("f"), O_CREAT | O_EXCL | O_RDWR, 0640, NULL, &g), -EEXIST);
	cr_assert_eq(store_pwrite(st, f, "hello", 5, 0), 5);
	cr_assert_eq(store_pwrite(st, f, "world", 5, 10), 5);
	cr_assert_eq(store_fstat(st, f, &a), 0);
	cr_assert_eq(a.size, 15);
	cr_assert(S_ISREG(a.mode));
	cr_assert_eq(a.mode & 07777, 0640, "mode %o", a.mode);
	memset(buf, 'x', sizeof(buf));
	cr_assert_eq(store_pread(st, f, buf, sizeof(buf), 0), 15);
	cr_assert_eq(memcmp(buf, "hello\0\0\0\0\0world", 15), 0);
	cr_assert_eq(store_pread(st, f, buf, 4, 12), 3);
	cr_assert_eq(memcmp(buf, "rld", 3), 0);
	cr_assert_eq(store_pread(st, f, buf, 4, 100), 0);
	cr_assert_eq(store_fsync(st, f, 0), 0);
	cr_assert_eq(store_ftruncate(st, f, 2), 0);
	cr_assert_eq(store_fstat(st, f, &a), 0);
	cr_assert_eq(a.size, 2);
	cr_assert_eq(store_close(st, f), 0);
	cr_assert_eq(store_stat(st, P("f"), &b), 0);
	cr_assert_eq(a.ino, b.ino);
	cr_assert_eq(b.size, 2);
	cr_assert_eq(b.nlink, 1);

	/* O_CREAT without O_EXCL on an existing file keeps its mode and data */
	cr_assert_eq(store_open(st, P("f"), O_CREAT | O_RDWR, 0600, NULL, &f), 0);
	cr_assert_eq(store_fstat(st, f, &a), 0);
	cr_assert_eq(a.mode & 07777, 0640);
	cr_assert_eq(a.size, 2);
	cr_assert_eq(store_close(st, f), 0);

	/* O_TRUNC */
	cr_assert_eq(store_open(st, P("f"), O_WRONLY | O_TRUNC, 0, NULL, &f), 0);
	cr_assert_eq(store_close(st, f), 0);
	cr_assert_eq(store_stat(st, P("f"), &a), 0);
	cr_assert_eq(a.size, 0);

	/* O_APPEND: the offset is ignored */
	cr_assert_eq(store_open(st, P("f"), O_WRONLY | O_APPEND, 0, NULL, &f), 0);
	cr_assert_eq(store_pwrite(st, f, "ab", 2, 0), 2);
	cr_assert_eq(store_pwrite(st, f, "cd", 2, 0), 2);
	cr_assert_eq(store_close(st, f), 0);
	size_t n;
	char *s = get_file(st, P("f"), &n);
	cr_assert_str_eq(s, "abcd");
	free(s);

	cr_assert_eq(store_open(st, P("absent"), O_RDONLY, 0, NULL, &f), -ENOENT);
	cr_assert_eq(store_open(st, P("absent/x"), O_CREAT | O_RDWR, 0644, NULL, &f), -ENOENT);
}

STORE_TEST(dirs_and_errors)
{
	struct store_attr a;
	struct store_file *f;
	cr_assert_eq(store_mkdir(st, P("d"), 0750), 0);
	cr_assert_eq(store_stat(st, P("d"), &a), 0);
	cr_assert(S_ISDIR(a.mode));
	cr_assert_eq(a.mode & 07777, 0750, "mode %o", a.mode);
	cr_assert_eq(store_mkdir(st, P("d"), 0750), -EEXIST);
	put_file(st, P("d/f"), "x", 1);
	cr_assert_eq(store_rmdir(st, P("d")), -ENOTEMPTY);
	cr_assert_eq(store_stat(st, P("d/f/x"), &a), -ENOTDIR);
	cr_assert_eq(store_open(st, P("d/f/x"), O_CREAT | O_RDWR, 0644, NULL, &f), -ENOTDIR);
	cr_assert_eq(store_mkdir(st, P("d/f/x"), 0755), -ENOTDIR);
	cr_assert_eq(store_mkdir(st, P("nope/x"), 0755), -ENOENT);
	cr_assert_eq(store_rmdir(st, P("d/f")), -ENOTDIR);
	cr_assert_lt(store_unlink(st, P("d")), 0);   /* EISDIR (Linux) or EPERM (POSIX) */
	cr_assert_eq(store_unlink(st, P("d/f")), 0);
	cr_assert_eq(store_unlink(st, P("d/f")), -ENOENT);
	cr_assert_eq(store_rmdir(st, P("d")), 0);
	cr_assert_eq(store_rmdir(st, P("d")), -ENOENT);
	cr_assert_eq(store_stat(st, P("d"), &a), -ENOENT);
}

struct seen {
	int n;
	int file, dir, lnk, fifo;
	uint64_t file_ino;
	uint64_t file_size;
	int with_attr;
	int bad_mode;
};

static int collect(void *arg, const struct store_dirent *de)
{
	struct seen *s = arg;
	s->n++;
	if (de->attr) {
		s->with_attr++;
		if ((de->attr->mode & S_IFMT) != de->type)
			s->bad_mode++;
	}
	if (!strcmp(de->name, "file")) {
		s->file = de->type == S_IFREG;
		s->file_ino = de->attr ? de->attr->ino : 0;
		s->file_size = de->attr ? de->attr->size : 0;
	} else if (!strcmp(de->name, "dir")) {
		s->dir = de->type == S_IFDIR;
	} else if (!strcmp(de->name, "link")) {
		s->lnk = de->type == S_IFLNK;
	} else if (!strcmp(de->name, "fifo")) {
		s->fifo = de->type == S_IFIFO;
	}
	return 0;
}

static int stop_at_two(void *arg, const struct store_dirent *de)
{
	(void)de;
	return ++*(int *)arg == 2 ? 42 : 0;
}

STORE_TEST(readdir_types)
{
	struct store_attr a;
	put_file(st, P("file"), "abc", 3);
	cr_assert_eq(store_mkdir(st, P("dir"), 0755), 0);
	cr_assert_eq(store_symlink(st, "file", P("link")), 0);
	int nspecial = g_kind == NFS4 ? 0 : 1;   /* libnfs 4.0 v4: no FIFOs (see mknod_kinds) */
	if (nspecial)
		cr_assert_eq(store_mknod(st, P("fifo"), S_IFIFO | 0644, 0), 0);
	struct seen s = { 0 };
	cr_assert_eq(store_readdir(st, g_base, collect, &s), 0);
	cr_assert_eq(s.n, 3 + nspecial);
	cr_assert_eq(s.with_attr, 3 + nspecial);
	cr_assert_eq(s.bad_mode, 0);
	cr_assert(s.file && s.dir && s.lnk && (s.fifo || !nspecial));
	cr_assert_eq(store_stat(st, P("file"), &a), 0);
	cr_assert_eq(s.file_ino, a.ino);
	cr_assert_eq(s.file_size, 3);
	int count = 0;
	cr_assert_eq(store_readdir(st, g_base, stop_at_two, &count), 42);
	cr_assert_eq(store_readdir(st, P("nope"), collect, &s), -ENOENT);
	cr_assert_eq(store_readdir(st, P("file"), collect, &s), -ENOTDIR);
}

struct big {
	int n, bad;
};

static int count_big(void *arg, const struct store_dirent *de)
{
	struct big *b = arg;
	int i;
	b->n++;
	if (sscanf(de->name, "e%d", &i) != 1 || !de->attr || !S_ISREG(de->attr->mode) ||
	    (de->attr->mode & 07777) != (uint32_t)(i % 2 ? 0600 : 0644) || de->attr->ino == 0)
		b->bad++;
	return 0;
}

STORE_TEST(readdir_2100)
{
	char name[64];
	for (int i = 0; i < 2100; i++) {
		struct store_file *f;
		snprintf(name, sizeof(name), "e%d", i);
		cr_assert_eq(store_open(st, P(name), O_CREAT | O_EXCL | O_WRONLY,
					i % 2 ? 0600 : 0644, NULL, &f),
			     0);
		cr_assert_eq(store_close(st, f), 0);
	}
	struct big b = { 0 };
	cr_assert_eq(store_readdir(st, g_base, count_big, &b), 0);
	cr_assert_eq(b.n, 2100);
	cr_assert_eq(b.bad, 0);
}

STORE_TEST(rename_variants)
{
	struct store_attr a, b;
	size_t n;
	char *s;
	put_file(st, P("a"), "A", 1);
	put_file(st, P("b"), "B", 1);
	cr_assert_eq(store_stat(st, P("a"), &a), 0);
	cr_assert_eq(store_rename(st, P("a"), P("b"), RENAME_NOREPLACE), -EEXIST);
	s = get_file(st, P("a"), &n);
	cr_assert_str_eq(s, "A");
	free(s);
	s = get_file(st, P("b"), &n);
	cr_assert_str_eq(s, "B");
	free(s);
	cr_assert_eq(store_rename(st, P("a"), P("c"), RENAME_NOREPLACE), 0);
	cr_assert_eq(store_stat(st, P("a"), &b), -ENOENT);
	cr_assert_eq(store_stat(st, P("c"), &b), 0);
	cr_assert_eq(b.ino, a.ino);
	cr_assert_eq(b.nlink, 1);
	cr_assert_eq(store_rename(st, P("c"), P("b"), 0), 0);   /* replaces */
	s = get_file(st, P("b"), &n);
	cr_assert_str_eq(s, "A");
	free(s);
	cr_assert_eq(store_stat(st, P("c"), &b), -ENOENT);
	/* directories */
	cr_assert_eq(store_mkdir(st, P("d1"), 0755), 0);
	cr_assert_eq(store_mkdir(st, P("d2"), 0755), 0);
	put_file(st, P("d2/x"), "x", 1);
	cr_assert_eq(store_rename(st, P("d1"), P("d2"), RENAME_NOREPLACE), -EEXIST);
	cr_assert_eq(store_rename(st, P("d1"), P("d3"), RENAME_NOREPLACE), 0);
	cr_assert_eq(store_stat(st, P("d3"), &b), 0);
	cr_assert(S_ISDIR(b.mode));
	cr_assert_eq(store_rename(st, P("d3"), P("d2"), 0), -ENOTEMPTY);
	cr_assert_eq(store_rename(st, P("nope"), P("z"), 0), -ENOENT);
	cr_assert_eq(store_rename(st, P("nope"), P("z"), RENAME_NOREPLACE), -ENOENT);
}

STORE_TEST(links)
{
	struct store_attr a, b;
	char buf[64];
	put_file(st, P("f"), "data", 4);
	cr_assert_eq(store_link(st, P("f"), P("g")), 0);
	cr_assert_eq(store_link(st, P("f"), P("g")), -EEXIST);
	cr_assert_eq(store_stat(st, P("f"), &a), 0);
	cr_assert_eq(store_stat(st, P("g"), &b), 0);
	cr_assert_eq(a.ino, b.ino);
	cr_assert_eq(a.nlink, 2);
	cr_assert_eq(store_symlink(st, "../somewhere/else", P("s")), 0);
	cr_assert_eq(store_symlink(st, "x", P("s")), -EEXIST);
	cr_assert_eq(store_stat(st, P("s"), &a), 0);
	cr_assert(S_ISLNK(a.mode));
	cr_assert_eq(a.size, 17);
	cr_assert_eq(store_readlink(st, P("s"), buf, sizeof(buf)), 17);
	cr_assert_str_eq(buf, "../somewhere/else");
	cr_assert_eq(store_readlink(st, P("s"), buf, 5), 17);
	cr_assert_str_eq(buf, "../s");
	cr_assert_lt(store_readlink(st, P("f"), buf, sizeof(buf)), 0);
	cr_assert_eq(store_readlink(st, P("nope"), buf, sizeof(buf)), -ENOENT);
}

STORE_TEST(mknod_kinds)
{
	struct store_attr a;
	if (g_kind == NFS4) {
		/* libnfs 4.0's v4 MKNOD makes no FIFO or socket and drops device numbers:
		 * the store refuses special files there rather than make wrong ones. */
		cr_assert_eq(store_mknod(st, P("fifo"), S_IFIFO | 0640, 0), -EPERM);
		cr_assert_eq(store_mknod(st, P("chr"), S_IFCHR | 0600, makedev(1, 3)), -EPERM);
		cr_assert_eq(store_mknod(st, P("reg"), S_IFREG | 0600, 0), 0);
		cr_assert_eq(store_mknod(st, P("reg"), S_IFREG | 0600, 0), -EEXIST);
		cr_assert_eq(store_stat(st, P("reg"), &a), 0);
		cr_assert(S_ISREG(a.mode));
		cr_assert_eq(a.mode & 07777, 0600);
		return;
	}
	cr_assert_eq(store_mknod(st, P("fifo"), S_IFIFO | 0640, 0), 0);
	cr_assert_eq(store_stat(st, P("fifo"), &a), 0);
	cr_assert(S_ISFIFO(a.mode));
	cr_assert_eq(a.mode & 07777, 0640);
	cr_assert_eq(store_mknod(st, P("reg"), S_IFREG | 0600, 0), 0);
	cr_assert_eq(store_stat(st, P("reg"), &a), 0);
	cr_assert(S_ISREG(a.mode));
	cr_assert_eq(a.size, 0);
	cr_assert_eq(store_mknod(st, P("reg"), S_IFREG | 0600, 0), -EEXIST);
	cr_assert_eq(store_mknod(st, P("chr"), S_IFCHR | 0600, makedev(1, 3)), 0);
	cr_assert_eq(store_stat(st, P("chr"), &a), 0);
	cr_assert(S_ISCHR(a.mode));
	cr_assert_eq(major(a.rdev), 1, "rdev %llx", (unsigned long long)a.rdev);
	cr_assert_eq(minor(a.rdev), 3);
}

STORE_TEST(attributes)
{
	struct store_attr a, b;
	put_file(st, P("f"), "0123456789", 10);
	cr_assert_eq(store_chmod(st, P("f"), 0604), 0);
	cr_assert_eq(store_stat(st, P("f"), &a), 0);
	cr_assert_eq(a.mode & 07777, 0604);
	cr_assert(S_ISREG(a.mode));
	cr_assert_eq(store_chown(st, P("f"), 1234, 5678), 0);
	cr_assert_eq(store_stat(st, P("f"), &a), 0);
	cr_assert_eq(a.uid, 1234);
	cr_assert_eq(a.gid, 5678);
	cr_assert_eq(store_chown(st, P("f"), (uint32_t)-1, 99), 0);
	cr_assert_eq(store_stat(st, P("f"), &a), 0);
	cr_assert_eq(a.uid, 1234);
	cr_assert_eq(a.gid, 99);

	struct timespec tv[2] = { { 1000000000, 123456000 }, { 1200000000, 654321000 } };
	cr_assert_eq(store_utimens(st, P("f"), tv), 0);
	cr_assert_eq(store_stat(st, P("f"), &a), 0);
	cr_assert_eq(a.atime.tv_sec, 1000000000);
	cr_assert_eq(a.mtime.tv_sec, 1200000000);
	cr_assert_eq(a.mtime.tv_nsec, 654321000, "nsec %ld", a.mtime.tv_nsec);
	struct timespec omit[2] = { { 0, UTIME_OMIT }, { 1300000000, 0 } };
	cr_assert_eq(store_utimens(st, P("f"), omit), 0);
	cr_assert_eq(store_stat(st, P("f"), &b), 0);
	cr_assert_eq(b.atime.tv_sec, 1000000000);
	cr_assert_eq(b.mtime.tv_sec, 1300000000);
	struct timespec now[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	cr_assert_eq(store_utimens(st, P("f"), now), 0);
	cr_assert_eq(store_stat(st, P("f"), &b), 0);
	time_t t = time(NULL);
	cr_assert(b.mtime.tv_sec > t - 30 && b.mtime.tv_sec < t + 30, "mtime %ld now %ld",
		  (long)b.mtime.tv_sec, (long)t);
	struct timespec now1[2] = { { 5, 0 }, { 0, UTIME_NOW } };
	cr_assert_eq(store_utimens(st, P("f"), now1), 0);
	cr_assert_eq(store_stat(st, P("f"), &b), 0);
	cr_assert_eq(b.atime.tv_sec, 5);
	cr_assert(b.mtime.tv_sec > t - 30);

	cr_assert_eq(store_truncate(st, P("f"), 100), 0);
	cr_assert_eq(store_stat(st, P("f"), &a), 0);
	cr_assert_eq(a.size, 100);
	cr_assert_eq(store_truncate(st, P("f"), 3), 0);
	size_t n;
	char *s = get_file(st, P("f"), &n);
	cr_assert_eq(n, 3);
	cr_assert_str_eq(s, "012");
	free(s);
	cr_assert_eq(store_chmod(st, P("nope"), 0600), -ENOENT);
	cr_assert_eq(store_truncate(st, P("nope"), 0), -ENOENT);

	struct statvfs v;
	cr_assert_eq(store_statfs(st, "/", &v), 0);
	cr_assert_gt(v.f_blocks, 0);
	cr_assert_gt(v.f_bsize, 0);
}

struct memsrc {
	const unsigned char *p;
};
static ssize_t memsrc_read(void *arg, void *buf, size_t len, uint64_t off)
{
	memcpy(buf, ((struct memsrc *)arg)->p + off, len);
	return (ssize_t)len;
}

static int no_tmp(void *arg, const struct store_dirent *de)
{
	if (!strncmp(de->name, ".ferryfs", 8))
		++*(int *)arg;
	return 0;
}

STORE_TEST(put_object)
{
	size_t len = (3u << 20) + 5;
	unsigned char *data = malloc(len);
	pattern(data, len, 7);
	struct memsrc m = { data };
	struct store_source src = { .size = len, .read = memsrc_read, .arg = &m, .mode = 0604,
				    .uid = 1001, .gid = 1002, .mtime = { 1500000000, 0 },
				    .have_meta = 1 };
	put_file(st, P("obj"), "old", 3);
	cr_assert_eq(store_put(st, P("obj"), &src), 0);
	struct store_attr a;
	cr_assert_eq(store_stat(st, P("obj"), &a), 0);
	cr_assert_eq(a.size, len);
	cr_assert_eq(a.mode & 07777, 0604);
	cr_assert_eq(a.uid, 1001);
	cr_assert_eq(a.gid, 1002);
	cr_assert_eq(a.mtime.tv_sec, 1500000000);
	size_t n;
	char *s = get_file(st, P("obj"), &n);
	cr_assert_eq(n, len);
	cr_assert_eq(memcmp(s, data, len), 0);
	free(s);
	int tmps = 0;
	cr_assert_eq(store_readdir(st, g_base, no_tmp, &tmps), 0);
	cr_assert_eq(tmps, 0);
	struct store_source empty = { .size = 0, .read = memsrc_read, .arg = &m };
	cr_assert_eq(store_put(st, P("empty"), &empty), 0);
	cr_assert_eq(store_stat(st, P("empty"), &a), 0);
	cr_assert_eq(a.size, 0);
	cr_assert_eq(store_put(st, P("nope/x"), &src), -ENOENT);
	free(data);
}

struct sink {
	unsigned char *p;
	size_t n;
	int calls;
};
static int sink_fn(void *arg, const void *data, size_t len)
{
	struct sink *s = arg;
	memcpy(s->p + s->n, data, len);
	s->n += len;
	s->calls++;
	return 0;
}
static int sink_abort(void *arg, const void *data, size_t len)
{
	(void)arg, (void)data, (void)len;
	return -ECANCELED;
}

STORE_TEST(read_stream)
{
	size_t len = (5u << 19) + 17;   /* 2.5 MiB + 17 */
	unsigned char *data = malloc(len);
	pattern(data, len, 11);
	put_file(st, P("big"), data, len);
	struct store_file *f;
	cr_assert_eq(store_open(st, P("big"), O_RDONLY, 0, NULL, &f), 0);
	struct sink s = { .p = malloc(len) };
	cr_assert_eq(store_read_stream(st, f, 100, UINT64_MAX, sink_fn, &s), 0);
	cr_assert_eq(s.n, len - 100);
	cr_assert_eq(memcmp(s.p, data + 100, len - 100), 0);
	s.n = 0;
	cr_assert_eq(store_read_stream(st, f, 1u << 20, 1000, sink_fn, &s), 0);
	cr_assert_eq(s.n, 1000);
	cr_assert_eq(memcmp(s.p, data + (1u << 20), 1000), 0);
	cr_assert_eq(store_read_stream(st, f, 0, UINT64_MAX, sink_abort, &s), -ECANCELED);
	cr_assert_eq(store_close(st, f), 0);
	free(s.p);
	free(data);
}

STORE_TEST(xattrs)
{
	char buf[256];
	put_file(st, P("f"), "x", 1);
	if (g_kind != LOCAL) {
		cr_assert_eq(store_getxattr(st, P("f"), "user.a", buf, sizeof(buf)), -ENOTSUP);
		cr_assert_eq(store_setxattr(st, P("f"), "user.a", "1", 1, 0), -ENOTSUP);
		return;
	}
	int rc = store_setxattr(st, P("f"), "user.color", "blue", 4, 0);
	if (rc == -ENOTSUP || rc == -EOPNOTSUPP)
		cannot_run("the scratch filesystem has no user xattrs");
	cr_assert_eq(rc, 0);
	cr_assert_eq(store_getxattr(st, P("f"), "user.color", buf, sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "blue", 4), 0);
	cr_assert_eq(store_getxattr(st, P("f"), "user.none", buf, sizeof(buf)), -ENODATA);
	cr_assert_eq(store_getxattr(st, P("f"), "trusted.x", buf, sizeof(buf)), -ENODATA);
	cr_assert_eq(store_setxattr(st, P("f"), "trusted.x", "1", 1, 0), -ENOTSUP);
	ssize_t n = store_listxattr(st, P("f"), buf, sizeof(buf));
	cr_assert_eq(n, 11);
	cr_assert_str_eq(buf, "user.color");
	cr_assert_eq(store_removexattr(st, P("f"), "user.color"), 0);
	cr_assert_eq(store_listxattr(st, P("f"), buf, sizeof(buf)), 0);
}

/* An open file renamed under its handle: reads from every context still reach it (the
 * other contexts cannot reopen it by its old path and fall back to the home one). */
struct rd {
	struct store *st;
	struct store_file *f;
	const unsigned char *data;
	size_t len;
	int errors;
};
static void *reader(void *arg)
{
	struct rd *r = arg;
	unsigned char buf[4096];
	for (int i = 0; i < 40; i++) {
		uint64_t off = (uint64_t)(i * 7919) % (r->len - sizeof(buf));
		if (store_pread(r->st, r->f, buf, sizeof(buf), off) != (ssize_t)sizeof(buf) ||
		    memcmp(buf, r->data + off, sizeof(buf)))
			r->errors++;
	}
	return NULL;
}

STORE_TEST(open_file_renamed)
{
	size_t len = 1u << 18;
	unsigned char *data = malloc(len);
	pattern(data, len, 3);
	put_file(st, P("f"), data, len);
	struct store_file *f;
	cr_assert_eq(store_open(st, P("f"), O_RDONLY, 0, NULL, &f), 0);
	cr_assert_eq(store_rename(st, P("f"), P("g"), 0), 0);
	put_file(st, P("f"), "other", 5);   /* another file now holds the old name */
	pthread_t t[8];
	struct rd r[8];
	for (int i = 0; i < 8; i++) {
		r[i] = (struct rd){ st, f, data, len, 0 };
		pthread_create(&t[i], NULL, reader, &r[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(r[i].errors, 0, "reader %d: %d errors", i, r[i].errors);
	}
	cr_assert_eq(store_close(st, f), 0);
	free(data);
}

/* 16 threads on a pool of 4: each writes its own blocks of one shared file and its own
 * file, in small pieces, then everything is read back and compared. */
#define HAMMER_THREADS 16
#define HAMMER_BLOCK (64u << 10)
#define HAMMER_BLOCKS 4
struct ham {
	struct store *st;
	struct store_file *shared;
	int id;
	int errors;
};
static void *hammer(void *arg)
{
	struct ham *h = arg;
	unsigned char *b = malloc(HAMMER_BLOCK), *c = malloc(HAMMER_BLOCK);
	char name[64];
	struct store_file *own;
	snprintf(name, sizeof(name), "own%d", h->id);
	if (store_open(h->st, P(name), O_CREAT | O_EXCL | O_RDWR, 0644, NULL, &own)) {
		h->errors++;
		goto out;
	}
	for (unsigned k = 0; k < HAMMER_BLOCKS; k++) {
		unsigned blk = k * HAMMER_THREADS + (unsigned)h->id;
		pattern(b, HAMMER_BLOCK, blk);
		for (unsigned piece = 0; piece < HAMMER_BLOCK; piece += 8192) {
			uint64_t off = (uint64_t)blk * HAMMER_BLOCK + piece;
			if (store_pwrite(h->st, h->shared, b + piece, 8192, off) != 8192)
				h->errors++;
		}
		if (store_pwrite(h->st, own, b, HAMMER_BLOCK, (uint64_t)k * HAMMER_BLOCK) !=
		    HAMMER_BLOCK)
			h->errors++;
		struct store_attr a;
		if (store_stat(h->st, g_base, &a))
			h->errors++;
	}
	for (unsigned k = 0; k < HAMMER_BLOCKS; k++) {
		unsigned blk = k * HAMMER_THREADS + (unsigned)h->id;
		pattern(b, HAMMER_BLOCK, blk);
		if (store_pread(h->st, own, c, HAMMER_BLOCK, (uint64_t)k * HAMMER_BLOCK) !=
			    HAMMER_BLOCK ||
		    memcmp(b, c, HAMMER_BLOCK))
			h->errors++;
	}
	if (store_close(h->st, own))
		h->errors++;
out:
	free(b);
	free(c);
	return NULL;
}

STORE_TEST(hammer_pool)
{
	struct store_file *shared;
	pthread_t t[HAMMER_THREADS];
	struct ham h[HAMMER_THREADS];
	cr_assert_eq(store_open(st, P("shared"), O_CREAT | O_EXCL | O_RDWR, 0644, NULL, &shared),
		     0);
	for (int i = 0; i < HAMMER_THREADS; i++) {
		h[i] = (struct ham){ st, shared, i, 0 };
		pthread_create(&t[i], NULL, hammer, &h[i]);
	}
	for (int i = 0; i < HAMMER_THREADS; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(h[i].errors, 0, "thread %d: %d errors", i, h[i].errors);
	}
	cr_assert_eq(store_close(st, shared), 0);
	/* read the shared file back through a fresh handle */
	size_t n;
	char *s = get_file(st, P("shared"), &n);
	cr_assert_eq(n, (size_t)HAMMER_THREADS * HAMMER_BLOCKS * HAMMER_BLOCK);
	unsigned char *b = malloc(HAMMER_BLOCK);
	for (unsigned blk = 0; blk < HAMMER_THREADS * HAMMER_BLOCKS; blk++) {
		pattern(b, HAMMER_BLOCK, blk);
		cr_assert_eq(memcmp(s + (size_t)blk * HAMMER_BLOCK, b, HAMMER_BLOCK), 0,
			     "block %u torn or lost", blk);
	}
	free(b);
	free(s);
}

/* ---- NFS only ---- */

/* A file removed (an NFS REMOVE) while open. NFSv3 is stateless: the server drops the
 * file, and a read by its handle gets NFS3ERR_STALE, which must reach the caller as
 * -ESTALE (not EIO, not ENOENT), on every read. NFSv4 keeps a file removed under an
 * OPEN readable until it is closed, as a local file stays readable (POSIX).
 * (Removing it behind nfs-ganesha's back, on the exported directory itself, proves
 * nothing: ganesha's cached descriptor keeps the inode alive and reads still succeed.) */
STORE_TEST(stale_handle)
{
	put_file(st, P("f"), "data", 4);
	struct store_file *f;
	char buf[8];
	cr_assert_eq(store_open(st, P("f"), O_RDONLY, 0, NULL, &f), 0);
	cr_assert_eq(store_pread(st, f, buf, sizeof(buf), 0), 4);
	cr_assert_eq(store_unlink(st, P("f")), 0);
	for (int i = 0; i < 3; i++) {
		ssize_t n = store_pread(st, f, buf, sizeof(buf), 0);
		if (g_kind == NFS3)
			cr_assert_eq(n, -ESTALE,
				     "NFSv3 read %d of a removed file: %zd, want -ESTALE", i, n);
		else
			cr_assert_eq(n, 4, "read %d of a file removed while open: %zd", i, n);
	}
	struct store_attr a;
	cr_assert_eq(store_stat(st, P("f"), &a), -ENOENT, "its name is gone");
	store_close(st, f);
}

/* The URL's subdirectory (spec 2: SUB) is the store's root. */
static char *with_sub(const char *url, const char *sub)
{
	char *out = malloc(strlen(url) + strlen(sub) + 2);
	const char *q = strchr(url, '?');
	size_t k = q ? (size_t)(q - url) : strlen(url);
	sprintf(out, "%.*s/%s%s", (int)k, url, sub, q ? q : "");
	return out;
}

STORE_TEST(subdir_root)
{
	put_file(st, P("inner"), "in", 2);
	const char *url = getenv(kind_env(g_kind));
	char *sub = with_sub(url, g_base + 1);
	struct store *s2 = open_store(sub, 2);
	struct store_attr a, b;
	cr_assert_eq(store_stat(s2, "/inner", &a), 0);
	cr_assert_eq(store_stat(st, P("inner"), &b), 0);
	cr_assert_eq(a.ino, b.ino);
	cr_assert_eq(a.size, 2);
	cr_assert_eq(store_mkdir(s2, "/made", 0755), 0);
	cr_assert_eq(store_stat(st, P("made"), &b), 0);
	store_destroy(s2);
	free(sub);
}

Test(nfs_misc, unreachable_server_fails_fast, .timeout = 60)
{
	struct ferry_config cfg;
	struct store *st;
	cfg_init(&cfg);
	/* nothing listens on port 1 */
	cfg.nfs = "nfs://127.0.0.1/export?version=4&nfsport=1";
	cfg.nfs_connections = 2;
	cr_assert_eq(store_new_nfs_side(&cfg, &st), 0);
	double t0 = util_now_s();
	cr_assert_lt(store_probe(st), 0);
	struct store_attr a;
	cr_assert_lt(store_stat(st, "/", &a), 0);
	cr_assert_lt(util_now_s() - t0, 30.0);
	store_destroy(st);
	cfg.nfs = "http://x/y";
	cr_assert_eq(store_new_nfs_side(&cfg, &st), -EINVAL);
}

Test(local_misc, never_leaves_root, .timeout = 60)
{
	const char *dir = getenv("FERRY_LOCAL_DIR");
	if (!dir)
		cannot_run("FERRY_LOCAL_DIR is not set");
	char esc[512], outside[512];
	snprintf(outside, sizeof(outside), "%s.outside-%ld", dir, (long)getpid());
	mkdir(outside, 0755);
	snprintf(esc, sizeof(esc), "%s/esc-%ld", dir, (long)getpid());
	cr_assert_eq(symlink(outside, esc), 0);
	struct store *st = open_store(dir, 1);
	char p[600];
	struct store_attr a;
	struct store_file *f;
	snprintf(p, sizeof(p), "/esc-%ld/x", (long)getpid());
	cr_assert_lt(store_open(st, p, O_CREAT | O_RDWR, 0644, NULL, &f), 0);
	cr_assert_lt(store_mkdir(st, p, 0755), 0);
	cr_assert_lt(store_stat(st, p, &a), 0);
	snprintf(p, sizeof(p), "/esc-%ld", (long)getpid());
	cr_assert_eq(store_stat(st, p, &a), 0);
	cr_assert(S_ISLNK(a.mode));
	cr_assert_lt(store_open(st, p, O_RDONLY, 0, NULL, &f), 0);   /* O_NOFOLLOW */
	cr_assert_lt(store_truncate(st, p, 0), 0);
	cr_assert_eq(store_unlink(st, p), 0);
	struct stat sb;
	snprintf(p, sizeof(p), "%s/x", outside);
	cr_assert_eq(stat(p, &sb), -1, "something was created outside the root");
	rmdir(outside);
	store_destroy(st);
}

#ifdef NFSSTORE_RESTART
/* ---- across a server restart (driven by tests/integration/nfsrestart.sh) ----
 * The script stops and restarts ganesha while this test runs; the two talk through files
 * in FERRY_RESTART_DIR: ready -> (script stops the server) down -> outage-seen ->
 * (script starts it again) up -> done. */

static void wait_file(const char *dir, const char *name, int secs)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	for (int i = 0; i < secs * 10; i++) {
		if (access(p, F_OK) == 0)
			return;
		usleep(100000);
	}
	cr_assert_fail("timed out waiting for %s", p);
}

static void touch_file(const char *dir, const char *name)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fclose(f);
}

struct busy {
	struct store *st;
	struct store_file *f;
	atomic_int stop;
	atomic_int ok_after_up;   /* successes once `up` was seen */
	atomic_int up;
	atomic_int calls;
	double worst;             /* longest single call, seconds */
};

static void *busy_reader(void *arg)
{
	struct busy *b = arg;
	char buf[4096];
	while (!atomic_load(&b->stop)) {
		double t0 = util_now_s();
		ssize_t n = store_pread(b->st, b->f, buf, sizeof(buf), 0);
		struct store_attr a;
		int rc = store_stat(b->st, "/restart/data", &a);
		double dt = util_now_s() - t0;
		if (dt > b->worst)
			b->worst = dt;
		atomic_fetch_add(&b->calls, 1);
		if (n == (ssize_t)sizeof(buf) && rc == 0 && atomic_load(&b->up))
			atomic_fetch_add(&b->ok_after_up, 1);
		usleep(20000);
	}
	return NULL;
}

static void restart_one(const char *url, const char *dir, const char *tag, int first)
{
	struct store *st = open_store(url, 4);
	char path[64], buf[8192], expect[8192];
	struct store_attr a;
	snprintf(path, sizeof(path), "/restart/%s", tag);
	if (first) {
		store_mkdir(st, "/restart", 0755);
		pattern((unsigned char *)expect, sizeof(expect), 5);
		put_file(st, "/restart/data", expect, sizeof(expect));
	}
	pattern((unsigned char *)expect, sizeof(expect), 5);
	struct store_file *f;
	cr_assert_eq(store_open(st, "/restart/data", O_RDONLY, 0, NULL, &f), 0);
	cr_assert_eq(store_pread(st, f, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	struct busy b = { .st = st, .f = f };
	pthread_t t;
	pthread_create(&t, NULL, busy_reader, &b);
	uint64_t reconnects0 = stats_get(nfs_reconnects);

	touch_file(dir, first ? "ready" : "ready2");
	wait_file(dir, first ? "down" : "down2", 60);
	/* The server is gone: calls fail, in bounded time, rather than hang. */
	double t0 = util_now_s();
	int rc = store_stat(st, "/restart/data", &a);
	double dt = util_now_s() - t0;
	cr_assert_lt(rc, 0, "stat during the outage succeeded");
	cr_assert_lt(dt, 25.0, "stat during the outage took %.1f s", dt);
	cr_assert_lt(store_pread(st, f, buf, sizeof(buf), 0), 0);
	touch_file(dir, first ? "outage-seen" : "outage-seen2");
	wait_file(dir, first ? "up" : "up2", 90);
	atomic_store(&b.up, 1);

	/* Back: every kind of call works again, the open handle included. */
	for (int i = 0; i < 3 && store_stat(st, "/restart/data", &a); i++)
		sleep(1);   /* the first call after the restart may still see the old socket */
	cr_assert_eq(store_stat(st, "/restart/data", &a), 0);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(store_pread(st, f, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cr_assert_eq(memcmp(buf, expect, sizeof(buf)), 0);
	put_file(st, path, "after", 5);
	size_t n;
	char *s = get_file(st, path, &n);
	cr_assert_str_eq(s, "after");
	free(s);
	struct seen sn = { 0 };
	cr_assert_eq(store_readdir(st, "/restart", collect, &sn), 0);
	sleep(1);
	atomic_store(&b.stop, 1);
	pthread_join(t, NULL);
	cr_assert_gt(atomic_load(&b.ok_after_up), 0, "the busy reader never recovered");
	cr_assert_lt(b.worst, 25.0, "a call took %.1f s", b.worst);
	cr_assert_gt(stats_get(nfs_reconnects), reconnects0);
	cr_assert_eq(store_close(st, f), 0);
	store_destroy(st);
}

Test(restart, v3_then_v4, .timeout = 400)
{
	const char *dir = getenv("FERRY_RESTART_DIR");
	if (!dir)
		cr_skip_test(
			"FERRY_RESTART_DIR is not set (run by tests/integration/nfsrestart.sh)");
	log_init(LOG_TO_STDERR, LOG_WARNING, "nfsrestart");
	restart_one(getenv("FERRY_NFS_URL"), dir, "v3", 1);
	restart_one(getenv("FERRY_NFS4_URL"), dir, "v4", 0);
}

/* A hung server (SIGSTOP): calls time out (nfs_set_timeout, 10 s, plus one reconnect
 * attempt) with ETIMEDOUT instead of blocking, and work again once it resumes. */
Test(restart, hung_server, .timeout = 300)
{
	const char *dir = getenv("FERRY_RESTART_DIR");
	if (!dir)
		cr_skip_test(
			"FERRY_RESTART_DIR is not set (run by tests/integration/nfsrestart.sh)");
	log_init(LOG_TO_STDERR, LOG_WARNING, "nfsrestart");
	struct store *st = open_store(getenv("FERRY_NFS_URL"), 2);
	struct store_attr a;
	cr_assert_eq(store_stat(st, "/", &a), 0);
	touch_file(dir, "ready3");
	wait_file(dir, "down3", 60);
	double t0 = util_now_s();
	int rc = store_stat(st, "/", &a);
	double dt = util_now_s() - t0;
	cr_assert_eq(rc, -ETIMEDOUT, "stat against a hung server: %d", rc);
	cr_assert_lt(dt, 45.0, "took %.1f s", dt);
	touch_file(dir, "outage-seen3");
	wait_file(dir, "up3", 90);
	cr_assert_eq(store_stat(st, "/", &a), 0);
	store_destroy(st);
}
#endif /* NFSSTORE_RESTART */
