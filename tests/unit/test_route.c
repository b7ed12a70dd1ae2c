/* Unit tests for route.c's merge rules (spec 2 and 3) over keys that s3rver cannot hold:
 * empty, "." and ".." segments, 300-byte names, reserved ".ferryfs" names, an object
 * shadowed by a directory. The two stores here are small in-memory implementations of
 * store.h (a key table listed with S3's delimiter semantics, and a table of new-store
 * entries), not mocks: route.c runs unchanged over them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cfg.h"
#include "view/dcache.h"
#include "migrate/fleet.h"
#include "writeback/conflict.h"
#include "view/route.h"
#include "base/stats.h"

/* --- an S3-like store: a sorted key table, listed with delimiter '/' ------------------ */

struct keystore {
	struct store base;
	const char *const *keys;   /* full keys, prefix "" */
	size_t n;
	int listed;                /* readdir calls */
	int stats;                 /* stat calls */
};

static int ks_readdir(struct store *st, const char *path, store_dirent_fn fn, void *arg)
{
	struct keystore *k = (struct keystore *)st;
	k->listed++;
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s", strcmp(path, "/") ? path + 1 : "");
	if (*dir)
		strcat(dir, "/");
	size_t dl = strlen(dir);
	char last[4200];
	int have_last = 0, any = 0;
	for (size_t i = 0; i < k->n; i++) {
		const char *key = k->keys[i];
		if (strncmp(key, dir, dl))
			continue;
		any = 1;
		const char *rel = key + dl;
		const char *slash = strchr(rel, '/');
		struct store_attr a = { .mode = S_IFREG | 0644, .size = 1 };
		struct store_dirent de = { .attr = &a };
		char name[4200];
		if (slash) {   /* a common prefix, delivered once */
			snprintf(name, sizeof(name), "%.*s", (int)(slash - rel), rel);
			if (have_last && !strcmp(name, last))
				continue;
			strcpy(last, name);
			have_last = 1;
			de.type = S_IFDIR;
			a.mode = S_IFDIR | 0755;
		} else {
			if (!*rel)
				continue;   /* the directory's own marker */
			snprintf(name, sizeof(name), "%s", rel);
			de.type = S_IFREG;
		}
		de.name = name;
		int rc = fn(arg, &de);
		if (rc)
			return rc;
	}
	return any ? 0 : -ENOENT;
}

static int ks_stat(struct store *st, const char *path, struct store_attr *out)
{
	(void)path;
	(void)out;
	((struct keystore *)st)->stats++;
	return -ENOENT;
}

static const struct store_ops ks_ops = { .name = "keys", .stat = ks_stat, .readdir = ks_readdir };

/* --- a new store holding a few entries of the root only ---------------------------- */

struct dirstore {
	struct store base;
	const char *const *names;
	size_t n;
};

static int ds_readdir(struct store *st, const char *path, store_dirent_fn fn, void *arg)
{
	struct dirstore *d = (struct dirstore *)st;
	if (strcmp(path, "/"))
		return -ENOENT;
	for (size_t i = 0; i < d->n; i++) {
		struct store_attr a = { .mode = S_IFREG | 0600,
					.ino = 100 + i,
					.have = STORE_HAVE_ALL };
		struct store_dirent de = { .name = d->names[i], .type = S_IFREG, .attr = &a };
		int rc = fn(arg, &de);
		if (rc)
			return rc;
	}
	return 0;
}

static int ds_stat(struct store *st, const char *path, struct store_attr *out)
{
	struct dirstore *d = (struct dirstore *)st;
	if (!strcmp(path, "/")) {
		memset(out, 0, sizeof(*out));
		out->mode = S_IFDIR | 0755;
		return 0;
	}
	for (size_t i = 0; i < d->n; i++)
		if (!strcmp(path + 1, d->names[i])) {
			memset(out, 0, sizeof(*out));
			out->mode = S_IFREG | 0600;
			out->ino = 100 + i;
			return 0;
		}
	return -ENOENT;
}

static const struct store_ops ds_ops = { .name = "dir", .stat = ds_stat, .readdir = ds_readdir };

/* --- the listing under test ------------------------------------------------------- */

struct listing {
	char names[64][300];
	enum route_src src[64];
	mode_t mode[64];
	int n;
};

static int collect(void *arg, const char *name, const struct stat *st, enum route_src src)
{
	struct listing *l = arg;
	cr_assert_lt(l->n, 64);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
	l->src[l->n] = src;
	l->mode[l->n] = st->st_mode;
	l->n++;
	return 0;
}

static int find(const struct listing *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (!strcmp(l->names[i], name))
			return i;
	return -1;
}

static char long_key[400];

Test(route, unreachable_and_shadowed_keys_are_hidden_and_counted)
{
	memset(long_key, 'x', 300);
	long_key[300] = '\0';
	/* sorted as S3 sorts them (bytewise) */
	const char *keys[] = { "..", "./x", ".ferryfs.wh.abc", "/abs", "a", "a/inner.txt",
			       "both.txt", "ok.txt", "sub//b", "sub/c", long_key };
	struct keystore s3 = { .base = { &ks_ops }, .keys = keys,
			       .n = sizeof(keys) / sizeof(keys[0]) };
	const char *nfs_names[] = { "both.txt", "nfs.txt", ".ferryfs.opaque-not",
				    ".ferryfs-marker" };
	struct dirstore nfs = { { &ds_ops }, nfs_names, 4 };
	struct ferry_config cfg;
	cfg_init(&cfg);
	struct route r = { .cfg = &cfg, .nfs = &nfs.base, .s3 = &s3.base };
	struct listing l = { 0 };

	dc_clear();
	uint64_t unreachable0 = stats_get(unreachable), shadowed0 = stats_get(shadowed);
	cr_assert_eq(route_readdir(&r, "/", collect, &l), 0);

	cr_expect_geq(find(&l, "ok.txt"), 0, "a plain key is listed");
	cr_expect_geq(find(&l, "nfs.txt"), 0, "a new-store file is listed");
	int both = find(&l, "both.txt");
	cr_expect_geq(both, 0);
	cr_expect_eq(l.src[both], ROUTE_NFS, "the new store wins a clash");
	int a = find(&l, "a");
	cr_expect_geq(a, 0);
	cr_expect(S_ISDIR(l.mode[a]), "object a beside keys under a/: the directory wins");
	cr_expect_geq(find(&l, "sub"), 0);
	int count_a = 0;
	for (int i = 0; i < l.n; i++)
		count_a += !strcmp(l.names[i], "a");
	cr_expect_eq(count_a, 1, "a is listed once");
	cr_expect_eq(find(&l, ".."), -1);
	cr_expect_eq(find(&l, "."), -1);
	cr_expect_eq(find(&l, ""), -1);
	cr_expect_eq(find(&l, long_key), -1, "a 300-byte name is never shown");
	cr_expect_eq(find(&l, ".ferryfs.wh.abc"), -1, "reserved S3 names are never shown");
	cr_expect_eq(find(&l, ".ferryfs-marker"), -1, "reserved new-store names are never shown");
	cr_expect_eq(find(&l, ".ferryfs.opaque-not"), -1);
	cr_expect_eq(l.n, 5, "exactly a, both.txt, nfs.txt, ok.txt and sub; got %d", l.n);

	/* "..", ".", "" (from "/abs"), ".ferryfs.wh.abc", the 300-byte name */
	cr_expect_eq(stats_get(unreachable) - unreachable0, 5, "unreachable counted: %llu",
		     (unsigned long long)(stats_get(unreachable) - unreachable0));
	cr_expect_eq(stats_get(shadowed) - shadowed0, 1, "the shadowed object is counted");

	/* inside "sub": "sub//b" has an empty segment; only "c" is listed */
	struct listing s = { 0 };
	cr_assert_eq(route_readdir(&r, "/sub", collect, &s), 0);
	cr_expect_eq(s.n, 1);
	cr_expect_str_eq(s.names[0], "c");
	cfg_free(&cfg);
}

Test(route, lookups_of_impossible_names_are_enoent)
{
	const char *keys[] = { "ok.txt" };
	struct keystore s3 = { .base = { &ks_ops }, .keys = keys, .n = 1 };
	struct dirstore nfs = { { &ds_ops }, NULL, 0 };
	struct ferry_config cfg;
	cfg_init(&cfg);
	struct route r = { .cfg = &cfg, .nfs = &nfs.base, .s3 = &s3.base };
	struct route_entry e;
	dc_clear();
	cr_expect_eq(route_lookup(&r, "/.ferryfs.opaque", &e), -ENOENT);
	cr_expect_eq(route_lookup(&r, "/a/../b", &e), -ENOENT);
	cr_expect_eq(route_lookup(&r, "/a//b", &e), -ENOENT);
	cr_expect_eq(route_lookup(&r, "/", &e), 0);
	cr_expect_eq(e.src, ROUTE_NFS);
	cfg_free(&cfg);
}

/* revalidate's conflict copies (src/migrate/fleet.c): beside the file, first 8 characters of the
 * ETag, never a name over 255 bytes */
Test(route, conflict_copy_names)
{
	char out[5000], leaf[300];
	cr_assert_eq(conflict_name("/d/m.txt", "5bb0dbb3aa0c1c5e83cbd1e1d8d6f8a9", out,
				   sizeof(out)), 0);
	cr_assert_str_eq(out, "/d/m.txt.conflict-s3-5bb0dbb3");
	cr_assert_eq(conflict_name("/m", "abc-2", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/m.conflict-s3-abc-2");
	cr_assert_eq(conflict_name("/m", "", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "/m.conflict-s3-none");
	char path[320];
	memset(leaf, 'x', 240);
	leaf[240] = '\0';
	snprintf(path, sizeof(path), "/%s", leaf);
	cr_assert_eq(conflict_name(path, "0123456789abcdef", out, sizeof(out)), -ENAMETOOLONG,
		     "a leaf of 240 + 21 bytes would be over NAME_MAX");
	cr_assert_eq(conflict_name("/d/m.txt", "0123456789", out, 10), -ENAMETOOLONG);
}

/* A second readdir within DC_TTL_S merges the recorded S3 listing again with a fresh
 * new-store listing: no S3 request, and what changed on the new store shows at once. */
Test(route, a_warm_readdir_merges_the_recorded_s3_listing_again)
{
	const char *keys[] = { "a.txt", "b.txt", "d/x" };
	struct keystore s3 = { .base = { &ks_ops }, .keys = keys, .n = 3 };
	const char *nfs_names[] = { "b.txt", "new.txt" };
	struct dirstore nfs = { { &ds_ops }, nfs_names, 0 };
	struct ferry_config cfg;
	cfg_init(&cfg);
	struct route r = { .cfg = &cfg, .nfs = &nfs.base, .s3 = &s3.base };

	dc_clear();
	struct listing l1 = { 0 };
	cr_assert_eq(route_readdir(&r, "/", collect, &l1), 0);
	cr_expect_eq(s3.listed, 1);
	cr_expect_eq(l1.n, 3, "a.txt, b.txt and d");

	/* the new store gains b.txt (a copy-up) and new.txt: both show, b.txt from NFS */
	nfs.n = 2;
	struct listing l2 = { 0 };
	cr_assert_eq(route_readdir_cached(&r, "/", collect, &l2), 0);
	cr_expect_eq(s3.listed, 1, "the S3 side came from the cache");
	cr_expect_eq(l2.n, 4, "a.txt, b.txt, d, new.txt; got %d", l2.n);
	int b = find(&l2, "b.txt");
	cr_expect_geq(b, 0);
	cr_expect_eq(l2.src[b], ROUTE_NFS, "the new store still wins a clash");
	cr_expect_geq(find(&l2, "new.txt"), 0);
	cr_expect(S_ISDIR(l2.mode[find(&l2, "d")]), "d is still a directory");
	cr_expect_eq(l2.src[find(&l2, "a.txt")], ROUTE_S3);

	/* a change through the mount forgets the listing: S3 is listed again */
	dc_forget("/a.txt");
	struct listing l3 = { 0 };
	cr_assert_eq(route_readdir_cached(&r, "/", collect, &l3), 0);
	cr_expect_eq(s3.listed, 2, "listed again after dc_forget");
	cr_expect_eq(l3.n, 4);

	/* the namespace's own callers (rmdir, rename, the mirror) always list S3 */
	struct listing l5 = { 0 };
	cr_assert_eq(route_readdir(&r, "/", collect, &l5), 0);
	cr_expect_eq(s3.listed, 3, "route_readdir lists S3 even with a fresh listing cached");
	cr_expect_eq(l5.n, 4);

	/* a subdirectory has its own listing */
	struct listing l4 = { 0 };
	cr_assert_eq(route_readdir_cached(&r, "/d", collect, &l4), 0);
	cr_expect_eq(s3.listed, 4);
	cr_expect_eq(l4.n, 1);
	dc_clear();
	cfg_free(&cfg);
}

/* Directories off the new store: remembered below them, forgotten by a change at, below
 * or above them, and not remembered at all when a change came in between. */
Test(route, directories_off_the_new_store)
{
	dc_clear();
	uint64_t g = dc_generation();
	dc_note_off_nfs("/a", g);
	cr_expect_eq(dc_off_nfs("/a/x"), 1);
	cr_expect_eq(dc_off_nfs("/a/b/c"), 1, "below a subdirectory too");
	cr_expect_eq(dc_off_nfs("/a"), 0, "not /a itself: its parent is asked");
	cr_expect_eq(dc_off_nfs("/ab/x"), 0, "a sibling with a longer name is not below /a");
	cr_expect_eq(dc_off_nfs("/x"), 0);

	dc_forget("/a/b/new.txt");     /* a copy-up below /a makes /a on the new store */
	cr_expect_eq(dc_off_nfs("/a/x"), 0, "a change below forgets the ancestor");

	g = dc_generation();
	dc_note_off_nfs("/a/b", g);
	cr_expect_eq(dc_off_nfs("/a/b/x"), 1);
	dc_forget("/a");
	cr_expect_eq(dc_off_nfs("/a/b/x"), 0, "a change above forgets what is below");

	g = dc_generation();
	dc_forget("/elsewhere");       /* a change while the new store was being asked */
	dc_note_off_nfs("/a", g);
	cr_expect_eq(dc_off_nfs("/a/x"), 0, "a note older than a change is not kept");
	dc_note_off_nfs("/", dc_generation());
	cr_expect_eq(dc_off_nfs("/x"), 0, "the root is always on the new store");
	dc_clear();
}

/* A lookup that found nothing in S3 answers, for DC_ONE_TTL_S, the lookup of a create of
 * the same name (route_lookup_new: one S3 stat for the kernel's LOOKUP and the create),
 * the new store still asked first; any other lookup asks S3 again (another host's new
 * object shows at once); forgotten by a change of the path through the mount, not kept
 * across one, and never read by a thread that bypasses the cache (the write-back). */
Test(route, a_create_trusts_a_lookup_that_just_found_nothing_in_s3)
{
	const char *keys[] = { "a.txt" };
	struct keystore s3 = { { &ks_ops }, keys, 1, 0, 0 };
	const char *nfs_names[] = { "new.txt" };
	struct dirstore nfs = { { &ds_ops }, nfs_names, 0 };
	struct ferry_config cfg;
	cfg_init(&cfg);
	struct route r = { .cfg = &cfg, .nfs = &nfs.base, .s3 = &s3.base };
	struct route_entry e;

	dc_clear();
	cr_expect_eq(route_lookup(&r, "/new.txt", &e), -ENOENT);
	cr_expect_eq(s3.stats, 1);
	cr_expect_eq(route_lookup_new(&r, "/new.txt", &e), -ENOENT);
	cr_expect_eq(s3.stats, 1, "the create's lookup does not ask S3 again");
	cr_expect_eq(route_lookup(&r, "/new.txt", &e), -ENOENT);
	cr_expect_eq(s3.stats, 2, "any other lookup asks S3 again");

	nfs.n = 1;                     /* another host made it on the new store */
	cr_expect_eq(route_lookup_new(&r, "/new.txt", &e), 0, "the new store is still asked first");
	cr_expect_eq(e.src, ROUTE_NFS);
	nfs.n = 0;

	dc_forget("/new.txt");         /* a change through the mount */
	cr_expect_eq(route_lookup_new(&r, "/new.txt", &e), -ENOENT);
	cr_expect_eq(s3.stats, 3, "a change of the path forgets it");

	uint64_t g = dc_path_generation("/x.txt");
	dc_forget("/x.txt");           /* a change while S3 was being asked */
	dc_note_s3_absent("/x.txt", g);
	cr_expect_eq(route_lookup_new(&r, "/x.txt", &e), -ENOENT);
	cr_expect_eq(s3.stats, 4, "an answer older than a change of the path is not kept");
	cr_expect_eq(route_lookup_new(&r, "/x.txt", &e), -ENOENT);
	cr_expect_eq(s3.stats, 4, "the lookup after the change is kept");

	dc_bypass(1);
	cr_expect_eq(route_lookup_new(&r, "/x.txt", &e), -ENOENT);
	cr_expect_eq(s3.stats, 5, "a thread that bypasses the cache always asks S3");
	dc_bypass(0);

	usleep((useconds_t)(DC_ONE_TTL_S * 1e6) + 100000);
	cr_expect_eq(route_lookup_new(&r, "/x.txt", &e), -ENOENT);
	cr_expect_eq(s3.stats, 6, "after DC_ONE_TTL_S S3 is asked again");
	dc_clear();
	cfg_free(&cfg);
}
