/* cmd-finish.c - `ferryctl finish [--state DIR] [--grace SECONDS] MOUNT` (spec 7): declare
 * the new store complete and retire S3.
 *
 * 1. Check, and refuse (exit 1, saying what is missing) unless:
 *    - every reachable, unshadowed S3 object under the prefix (the whole bucket listing,
 *      every page) is complete on the new store: its path is there (migrated and verified
 *      by a mount, or written through one: the new store wins), or it is hidden by a
 *      whiteout or an opaque directory (deleted through a mount). A `migrated` file whose
 *      S3 ETag is no longer the one migrated is not complete (S3 changed since);
 *    - this mount's journal is empty and nothing is queued, copying or failed.
 *    Unreachable and shadowed keys are counted and reported; they do not block (no mount
 *    can show them: `ferryctl scan` lists them).
 * 2. Tell the daemon (user.ferryfs.finish=1 on the root; it checks its journal and queue
 *    again): from then on it serves the new store alone and never whites anything out.
 * 3. Put the marker object PREFIX.ferryfs.finished in S3: every other host's mount looks for
 *    it every 10 s and switches the same way. Wait --grace seconds (default 15) so that they
 *    have, before their whiteouts disappear.
 * 4. Walk the new store and remove every whiteout (.ferryfs.wh.*) and opaque marker
 *    (.ferryfs.opaque), and temporary copy files (.ferryfs.tmp.*) of processes that are
 *    gone (this host's, or older than an hour: a live copy writes more often than that),
 *    and the hidden names of files that were open when their name went
 *    (.ferryfs.hidden.*) of this host's processes that are gone (a crash kept them: the
 *    last close never came). Another host's are left and listed: a file may stay open
 *    for days, and no age tells that it is not.
 * A finished mount (the ledger's "finished" checkpoint, or the marker in S3) skips the check
 * and only does 2-4 again, so an interrupted finish can be run again.
 *
 * Needs the mount's configuration (read from the daemon's command line) and the same
 * credentials as the mount (environment, credentials file or config file). */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/cfg.h"
#include "s3/creds.h"
#include "migrate/crawl.h"
#include "migrate/sweep.h"
#include "ctl/ctl.h"
#include "migrate/fleet.h"
#include "ledger/ledger.h"
#include "base/naming.h"
#include "view/route.h"
#include "s3/client.h"
#include "s3/xml.h"
#include "store/store.h"
#include "base/util.h"
#include "view/whiteout.h"

#define FIN_EXAMPLES 5
#define FIN_TMP_MAX_AGE 3600

struct finish {
	struct ferry_config *cfg;
	struct store *s3, *nfs;
	struct route r;
	struct ledger *l;
	struct crawl_shadow sh;
	const struct s3xml_list *page;   /* the page being fed (ETags of emitted keys) */
	char prev[CRAWL_KEY_MAX];
	uint64_t listed, complete, hidden, unreachable, shadowed, errors;
	uint64_t missing, stale;
	char *ex_missing[FIN_EXAMPLES], *ex_stale[FIN_EXAMPLES];
	/* marker sweep */
	uint64_t wh, opaque, tmp, tmp_left, gone, gone_left, dirs;
};

static void example(char **ex, uint64_t n, const char *path)
{
	if (n <= FIN_EXAMPLES)
		ex[n - 1] = strdup(path);
}

/* The ETag of key in the page being fed, or NULL (then a HEAD answers). */
static const char *page_etag(struct finish *f, const char *key)
{
	const struct s3xml_list *p = f->page;
	size_t lo = 0, hi = p ? p->nobjects : 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(p->objects[mid].key, key);
		if (c == 0)
			return p->objects[mid].etag;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int one(void *arg, const char *key, int shadowed)
{
	struct finish *f = arg;
	char path[NAME_MAX_PATH + 2];
	struct store_attr na;
	struct ledger_file rec;
	int rc = name_key_to_path(f->cfg->s3_prefix, key, path, sizeof(path));
	if (rc == -ENOENT)
		return 0;            /* not under the prefix */
	if (rc) {
		f->unreachable++;
		return 0;
	}
	if (shadowed) {
		f->shadowed++;
		return 0;
	}
	if (key[strlen(key) - 1] == '/')
		return 0;            /* a directory marker: its directory is checked by its files */
	rc = store_stat(f->nfs, path, &na);
	if (rc == 0) {
		if (ledger_file_get(f->l, path, &rec) == 0 && rec.state == LEDGER_MIGRATED &&
		    rec.etag[0]) {
			const char *now = page_etag(f, key);
			struct store_attr sa;
			if (!now && store_stat(f->s3, path, &sa) == 0)
				now = sa.etag;
			if (now && strcmp(now, rec.etag)) {
				f->stale++;
				example(f->ex_stale, f->stale, path);
				return 0;
			}
		}
		f->complete++;
		return 0;
	}
	if (rc == -ENOTDIR) {
		f->hidden++;         /* a file on the new store hides the S3 directory */
		return 0;
	}
	if (rc == -ENOENT) {
		rc = wh_is_hidden(f->r.nfs, path);
		if (rc == 1) {
			f->hidden++;
			return 0;
		}
		if (rc == 0) {
			f->missing++;
			example(f->ex_missing, f->missing, path);
			return 0;
		}
	}
	ctl_err("%s: %s", path, strerror(-rc));
	f->errors++;
	return 0;
}

static int on_page(void *arg, const struct s3xml_list *page)
{
	struct finish *f = arg;
	int rc;
	f->page = page;
	for (size_t i = 0; i < page->nobjects; i++) {
		f->listed++;
		if ((rc = crawl_shadow_feed(&f->sh, page->objects[i].key, f->prev, one, f)))
			return rc;
		snprintf(f->prev, sizeof(f->prev), "%s", page->objects[i].key);
	}
	f->page = NULL;
	ctl_progress(0, 0, "%llu keys checked, %llu not migrated", (unsigned long long)f->listed,
		     (unsigned long long)f->missing + f->stale);
	return 0;
}

/* ---- removing the markers ------------------------------------------------------------ */

struct dlist {
	char **names;
	uint32_t *types;
	size_t n, cap;
};

static int collect(void *arg, const struct store_dirent *de)
{
	struct dlist *d = arg;
	if (!strcmp(de->name, ".") || !strcmp(de->name, ".."))
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		char **n = realloc(d->names, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		d->names = n;
		uint32_t *t = realloc(d->types, cap * sizeof(*t));
		if (!t)
			return -ENOMEM;
		d->types = t;
		d->cap = cap;
	}
	if (!(d->names[d->n] = strdup(de->name)))
		return -ENOMEM;
	d->types[d->n] = de->type ? de->type : (de->attr ? (de->attr->mode & S_IFMT) : 0);
	d->n++;
	return 0;
}

/* 1 when name ("<prefix><host>.<pid>.<...>", or for a temporary copy file
 * "<prefix><host>.<owner>.<pid>.<...>", owner 8 hex digits) was made by a process of this
 * host that is not a live ferryfs (the pid gone, or reused by another program). */
static int ours_dead(const char *name, size_t prefix_len)
{
	char host[64] = "host";
	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	for (char *h = host; *h; h++)
		if (*h == '/' || *h == '.')
			*h = '_';
	const char *rest = name + prefix_len;
	size_t hl = strlen(host);
	if (strncmp(rest, host, hl) || rest[hl] != '.')
		return 0;
	rest += hl + 1;
	if (strspn(rest, "0123456789abcdef") == 8 && rest[8] == '.')
		rest += 9;            /* the state directory's id (copy_set_owner) */
	long pid = strtol(rest, NULL, 10);
	char p[64], comm[64] = "";
	snprintf(p, sizeof(p), "/proc/%ld/comm", pid);
	FILE *fp = pid > 0 ? fopen(p, "r") : NULL;
	if (fp) {
		if (!fgets(comm, sizeof(comm), fp))
			comm[0] = '\0';
		fclose(fp);
	}
	comm[strcspn(comm, "\n")] = '\0';
	return strcmp(comm, "ferryfs") != 0;
}

/* A temporary copy file nobody will finish: this host's, of a process that is not a live
 * ferryfs; or any host's, untouched for an hour. */
static int tmp_dead(struct finish *f, const char *path, const char *name)
{
	if (ours_dead(name, sizeof(WH_TMP_PREFIX) - 1))
		return 1;
	struct store_attr a;
	return store_stat(f->nfs, path, &a) == 0 && a.mtime.tv_sec + FIN_TMP_MAX_AGE < time(NULL);
}

static int sweep_dir(struct finish *f, const char *dir)
{
	struct dlist d = { 0 };
	const size_t clen = NAME_MAX_PATH + 300;
	char *child = malloc(clen);     /* on the heap: this recurses */
	int rc = child ? store_readdir(f->nfs, dir, collect, &d) : -ENOMEM;
	if (rc == -ENOENT)
		rc = 0;                 /* removed meanwhile */
	f->dirs++;
	for (size_t i = 0; i < d.n && !rc; i++) {
		const char *name = d.names[i];
		snprintf(child, clen, "%s/%s", strcmp(dir, "/") ? dir : "", name);
		uint64_t *count = NULL;
		if (!strncmp(name, WH_PREFIX, sizeof(WH_PREFIX) - 1))
			count = &f->wh;
		else if (!strcmp(name, WH_OPAQUE))
			count = &f->opaque;
		else if (!strncmp(name, WH_TMP_PREFIX, sizeof(WH_TMP_PREFIX) - 1)) {
			if (tmp_dead(f, child, name))
				count = &f->tmp;
			else {
				f->tmp_left++;
				printf("left: %s (a copy that may still be running on another "
				       "host)\n",
				       child);
			}
		} else if (!strncmp(name, WH_HIDDEN_PREFIX, sizeof(WH_HIDDEN_PREFIX) - 1)) {
			if (ours_dead(name, sizeof(WH_HIDDEN_PREFIX) - 1))
				count = &f->gone;
			else {
				f->gone_left++;
				printf("left: %s (a file unlinked while open, that a live mount "
				       "may still "
				       "hold open; remove it once no host does)\n",
				       child);
			}
		}
		if (count) {
			int urc = store_unlink(f->nfs, child);
			if (urc == 0)
				(*count)++;
			else if (urc != -ENOENT) {
				ctl_err("cannot remove %s: %s", child, strerror(-urc));
				f->errors++;
			}
			continue;
		}
		uint32_t type = d.types[i];
		if (!type) {
			struct store_attr a;
			if (store_stat(f->nfs, child, &a) == 0)
				type = a.mode & S_IFMT;
		}
		if (type == S_IFDIR)
			rc = sweep_dir(f, child);
	}
	if ((f->dirs & 63) == 0)
		ctl_progress(0, 0, "%llu directories, %llu markers removed",
			     (unsigned long long)f->dirs, (unsigned long long)(f->wh + f->opaque));
	for (size_t i = 0; i < d.n; i++)
		free(d.names[i]);
	free(d.names);
	free(d.types);
	free(child);
	return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

static void print_examples(char **ex, uint64_t n)
{
	for (uint64_t i = 0; i < n && i < FIN_EXAMPLES; i++)
		printf("    %s\n", ex[i]);
	if (n > FIN_EXAMPLES)
		printf("    ... and %llu more\n", (unsigned long long)(n - FIN_EXAMPLES));
}

static int marker_key(struct finish *f, struct buf *key)
{
	return buf_printf(key, "%s%s", f->cfg->s3_prefix, FLEET_FINISHED_KEY);
}

static int cmd_finish(int argc, char **argv)
{
	const char *state = NULL, *mount = NULL;
	unsigned grace = 15;
	struct ferry_config cfg;
	struct finish f = { .cfg = &cfg };
	struct buf key = { 0 };
	char root[PATH_MAX], rel[PATH_MAX], err[512] = "";
	int status = 1, rc, fleet_done = 0, already = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--state") && i + 1 < argc)
			state = argv[++i];
		else if (!strcmp(argv[i], "--grace") && i + 1 < argc) {
			char *end;
			unsigned long g = strtoul(argv[++i], &end, 10);
			if (*end || g > 3600)
				return 2;
			grace = (unsigned)g;
		} else if (argv[i][0] != '-' && !mount)
			mount = argv[i];
		else
			return 2;
	}
	if (!mount)
		return 2;
	rc = ctl_mount_of(mount, root, rel);
	if (rc) {
		ctl_err("%s: %s", mount, rc == -ENOENT ? "not in a ferryfs mount" : strerror(-rc));
		return 1;
	}
	if (ctl_mount_config(root, &cfg)) {
		ctl_err("cannot find the configuration of the ferryfs daemon serving %s", root);
		return 1;
	}
	if (creds_configure(&cfg, err, sizeof(err))) {
		ctl_err("%s", err);
		goto out_cfg;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		goto out_cfg;
	if ((rc = store_s3_new(&cfg, &f.s3)) || (rc = store_new_nfs_side(&cfg, &f.nfs)) ||
	    (rc = store_probe(f.s3)) || (rc = store_probe(f.nfs))) {
		ctl_err("cannot reach the stores: %s", strerror(-rc));
		goto out_stores;
	}
	if (ctl_open_ledger(root, state ? state : cfg.state_dir, &f.l))
		goto out_stores;
	f.r = (struct route){ .cfg = &cfg, .nfs = f.nfs, .s3 = f.s3, .ledger = f.l };
	struct s3_client *c = store_s3_client(f.s3);
	struct s3_object_info oi;
	char v[32];
	if ((rc = marker_key(&f, &key)))
		goto out_ledger;
	already = ledger_ckpt_get(f.l, FLEET_FINISHED_CKPT, v, sizeof(v)) > 0;
	fleet_done = s3_head(c, key.data, &oi) == 0;

	/* 1. the checks */
	struct ledger_stats st;
	if ((rc = ledger_stats(f.l, &st))) {
		ctl_err("cannot read the ledger: %s", strerror(-rc));
		goto out_ledger;
	}
	uint64_t queued = 0;
	for (int p = 0; p < LEDGER_NPRIO; p++)
		queued += st.queued[p];
	if (!already && !fleet_done) {
		struct s3_list_opts o = { .prefix = cfg.s3_prefix, .max_keys = 1000 };
		rc = s3_list(c, &o, on_page, &f);
		if (!rc)
			rc = crawl_shadow_flush(&f.sh, one, &f);
		ctl_progress_done();
		if (rc) {
			ctl_err("listing S3 failed: %s", strerror(-rc));
			goto out_ledger;
		}
	} else {
		printf("%s: finished already (%s); checking nothing, removing what markers are "
		       "left\n",
		       root, already ? "this mount" : "S3 holds the fleet's finished marker");
	}
	int blocked = 0;
	if (f.missing) {
		printf("not finished: %llu S3 object(s) not on the new store (ferryctl migrate "
		       "--all --wait):\n",
		       (unsigned long long)f.missing);
		print_examples(f.ex_missing, f.missing);
		blocked = 1;
	}
	if (f.stale) {
		printf("not finished: %llu migrated file(s) whose S3 object changed since (another "
		       "host "
		       "wrote S3; revalidate re-migrates them):\n",
		       (unsigned long long)f.stale);
		print_examples(f.ex_stale, f.stale);
		blocked = 1;
	}
	if (st.journal_pending && already) {
		/* written after this mount finished: the new store holds them; write-back to
		 * the retired S3 goes on and blocks nothing (doc/migration.md) */
		printf("note: the journal holds %llu change(s) made since finish, on their way to "
		       "S3\n",
		       (unsigned long long)st.journal_pending);
	} else if (st.journal_pending) {
		printf("not finished: the journal holds %llu change(s) not yet written back to S3 "
		       "(ferryctl sync-back %s --wait)\n",
		       (unsigned long long)st.journal_pending, root);
		blocked = 1;
	}
	if (!already && (queued || st.copying || st.files[LEDGER_FAILED])) {
		printf("not finished: migrations queued %llu, copying %llu, failed %llu (ferryctl "
		       "status %s)\n",
		       (unsigned long long)queued, (unsigned long long)st.copying,
		       (unsigned long long)st.files[LEDGER_FAILED], root);
		blocked = 1;
	}
	if (f.errors) {
		printf("not finished: %llu error(s) while checking (above)\n",
		       (unsigned long long)f.errors);
		blocked = 1;
	}
	if (f.unreachable || f.shadowed)
		printf("note: %llu unreachable and %llu shadowed S3 key(s) are not shown by any "
		       "mount; "
		       "they do not block finish (ferryctl scan %s lists them)\n",
		       (unsigned long long)f.unreachable, (unsigned long long)f.shadowed, root);
	if (st.files[LEDGER_CONFLICT])
		printf("note: %llu file(s) in conflict: both versions are on the new store "
		       "(ferryctl status %s lists them)\n",
		       (unsigned long long)st.files[LEDGER_CONFLICT], root);
	if (blocked)
		goto out_ledger;

	/* 2. the daemon switches to the new store alone */
	if ((rc = ctl_setxattr(root, "finish", "1"))) {
		ctl_err("%s refused to finish: %s", root,
			rc == -EBUSY ?
				"work arrived meanwhile (journal or queue; see the daemon's log)" :
				strerror(-rc));
		goto out_ledger;
	}
	/* 3. the other hosts: the marker in S3, then time to see it */
	if (!fleet_done) {
		char body[256], host[64] = "?";
		gethostname(host, sizeof(host) - 1);
		host[sizeof(host) - 1] = '\0';
		int n = snprintf(body, sizeof(body), "finished by ferryctl on %s at %lld\n", host,
				 (long long)time(NULL));
		if ((rc = s3_put_buf(c, key.data, body, (size_t)n, NULL, NULL))) {
			ctl_err("cannot put the finished marker %s in S3: %s (the markers stay; "
				"run "
				"ferryctl finish again)",
				key.data, strerror(-rc));
			goto out_ledger;
		}
		if (grace) {
			printf("waiting %u s for the other hosts' mounts to see the finished "
			       "marker\n",
			       grace);
			fflush(stdout);
			sleep(grace);
		}
	}
	/* 4. the markers go, and the fleet's sweep files */
	if ((rc = sw_remove_all(f.nfs)))
		ctl_err("cannot remove %s: %s", SW_DIR, strerror(-rc));
	rc = sweep_dir(&f, "/");
	ctl_progress_done();
	if (rc) {
		ctl_err("walking the new store failed: %s (run ferryctl finish again)",
			strerror(-rc));
		goto out_ledger;
	}
	if (!already && !fleet_done)
		printf("checked %llu S3 key(s): %llu on the new store, %llu deleted through a "
		       "mount; "
		       "%llu unreachable, %llu shadowed\n",
		       (unsigned long long)f.listed, (unsigned long long)f.complete,
		       (unsigned long long)f.hidden, (unsigned long long)f.unreachable,
		       (unsigned long long)f.shadowed);
	printf("removed %llu whiteout(s), %llu opaque marker(s), %llu temporary file(s)",
	       (unsigned long long)f.wh, (unsigned long long)f.opaque, (unsigned long long)f.tmp);
	if (f.gone)
		printf(", %llu unlinked file(s) a crash had kept", (unsigned long long)f.gone);
	if (f.tmp_left)
		printf("; %llu temporary file(s) of live copies left",
		       (unsigned long long)f.tmp_left);
	if (f.gone_left)
		printf("; %llu unlinked file(s) still open left", (unsigned long long)f.gone_left);
	printf("\nfinished: the new store (%s) holds the complete tree; %s serves it alone and no "
	       "longer reads S3\n", cfg.nfs, root);
	status = f.errors ? 1 : 0;
out_ledger:
	crawl_shadow_free(&f.sh);
	ledger_close(f.l);
out_stores:
	store_destroy(f.s3);
	store_destroy(f.nfs);
	curl_global_cleanup();
out_cfg:
	for (int i = 0; i < FIN_EXAMPLES; i++) {
		free(f.ex_missing[i]);
		free(f.ex_stale[i]);
	}
	buf_free(&key);
	cfg_free(&cfg);
	return status;
}

const struct ctl_cmd ctl_cmd_finish = { "finish", "finish [--state DIR] [--grace SECONDS] MOUNT",
					cmd_finish };
