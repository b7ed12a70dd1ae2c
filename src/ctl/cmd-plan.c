/* cmd-plan.c - `ferryctl plan CONFIG [--inventory MANIFEST] [--hosts N] [--rate SIZE]
 * [--rate-files N] [--json]`: what the migration of a mount's bucket will take, before
 * anything is mounted. It lists the bucket under the configured prefix (or reads an S3
 * Inventory report: its manifest.json and gzipped CSV files, downloaded beside it), feeds the
 * keys to the planner (migrate/plan.c) and prints objects and bytes by size class,
 * unreachable, shadowed and archived keys, the crawl's time at the given rates and number of
 * hosts, its S3 requests and their list price, and the NFS and ledger space needed. Reads
 * only: it writes nothing to S3, NFS or a ledger. */
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/cfg.h"
#include "base/util.h"
#include "ctl/ctl.h"
#include "migrate/plan.h"
#include "s3/client.h"
#include "s3/creds.h"
#include "s3/xml.h"

struct keyset;
static int keyset_add(struct keyset *ks, const char *key, uint64_t size, const char *sclass);

struct plan_run {
	struct plan *plan;
	struct keyset *keys;
	uint64_t listed, pages;
	double started;
};

static int on_page(void *arg, const struct s3xml_list *page)
{
	struct plan_run *pr = arg;
	for (size_t i = 0; i < page->nobjects; i++) {
		const struct s3xml_object *o = &page->objects[i];
		int rc = keyset_add(pr->keys, o->key, o->size, o->storage_class);
		if (rc)
			return rc;
	}
	pr->listed += page->nobjects;
	pr->pages++;
	ctl_progress(0, 0, "%llu keys listed (%.0f keys/s)", (unsigned long long)pr->listed,
		     pr->listed / (util_now_s() - pr->started + 1e-9));
	return 0;
}

/* --- S3 Inventory ----------------------------------------------------------------- */

/* The next JSON string value at or after *p (escapes decoded into out). 0 / -EPROTO. */
static int json_string(const char **p, struct buf *out)
{
	const char *s = strchr(*p, '"');
	if (!s)
		return -EPROTO;
	buf_reset(out);
	for (s++; *s && *s != '"'; s++) {
		char c = *s;
		if (c == '\\') {
			s++;
			switch (*s) {
			case '"':
			case '\\':
			case '/': c = *s; break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'u': {
				int v = 0;
				for (int i = 1; i <= 4; i++) {
					int h = util_hexval(s[i]);
					if (h < 0)
						return -EPROTO;
					v = v * 16 + h;
				}
				if (v == 0 || v > 0x7f)
					return -EPROTO; /* keys in manifests are ASCII paths */
				c = (char)v;
				s += 4;
				break;
			}
			default: return -EPROTO;
			}
		}
		if (buf_append(out, &c, 1))
			return -ENOMEM;
	}
	if (*s != '"' || buf_append(out, "", 1))
		return -EPROTO;
	out->len--;
	*p = s + 1;
	return 0;
}

/* The value of "name": "..." in a JSON text, searched from *p. 0 / -ENOENT / -EPROTO. */
static int json_field(const char **p, const char *name, struct buf *out)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\"", name);
	const char *s = strstr(*p, pat);
	if (!s)
		return -ENOENT;
	s += strlen(pat);
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s++ != ':')
		return -EPROTO;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s != '"')
		return -EPROTO;
	*p = s;
	return json_string(p, out);
}

/* Every key, kept until the end and then fed in byte order: a server may list out of order
 * (s3rver does), and an inventory's files are in no order. One arena of NUL-terminated keys
 * and 17 bytes of entry a key: about 80 bytes a key of 60 bytes (880 MB for 11 M keys). */
struct key_ent {
	uint64_t off; /* into the arena */
	uint64_t size;
	unsigned char archived;
} __attribute__((packed));

struct keyset {
	struct buf arena;
	struct key_ent *ents;
	size_t n, cap;
};

static int keyset_add(struct keyset *ks, const char *key, uint64_t size, const char *sclass)
{
	if (ks->n == ks->cap) {
		size_t cap = ks->cap ? 2 * ks->cap : 4096;
		struct key_ent *e = realloc(ks->ents, cap * sizeof(*e));
		if (!e)
			return -ENOMEM;
		ks->ents = e;
		ks->cap = cap;
	}
	uint64_t off = ks->arena.len;
	if (buf_append(&ks->arena, key, strlen(key) + 1))
		return -ENOMEM;
	ks->ents[ks->n++] =
		(struct key_ent){ off, size, (unsigned char)plan_class_archived(sclass) };
	return 0;
}

static const char *sort_arena;

static int cmp_ent(const void *a, const void *b)
{
	return strcmp(sort_arena + ((const struct key_ent *)a)->off,
		      sort_arena + ((const struct key_ent *)b)->off);
}

/* Sort the keys and feed them to the planner. 0 / -errno. */
static int keyset_feed(struct keyset *ks, struct plan *p)
{
	sort_arena = ks->arena.data;
	qsort(ks->ents, ks->n, sizeof(*ks->ents), cmp_ent);
	for (size_t i = 0; i < ks->n; i++) {
		const struct key_ent *e = &ks->ents[i];
		int rc = plan_add(p, ks->arena.data + e->off, e->size,
				  e->archived ? "GLACIER" : NULL);
		if (rc)
			return rc;
	}
	return 0;
}

static void keyset_free(struct keyset *ks)
{
	buf_free(&ks->arena);
	free(ks->ents);
}

struct inventory {
	struct keyset *ks;
	int col_key, col_size, col_class, ncols;
};

/* Split one CSV line (fields quoted as S3 Inventory writes them) into at most max fields,
 * in place. Returns the number of fields or -EPROTO. */
static int csv_split(char *line, char **f, int max)
{
	int n = 0;
	char *s = line;
	for (;;) {
		if (n == max)
			return -EPROTO;
		if (*s == '"') {
			char *w = ++s;
			f[n++] = w;
			for (;;) {
				if (!*s)
					return -EPROTO;
				if (*s == '"' && s[1] == '"') {
					*w++ = '"';
					s += 2;
				} else if (*s == '"') {
					s++;
					break;
				} else {
					*w++ = *s++;
				}
			}
			*w = '\0';
		} else {
			f[n++] = s;
			s += strcspn(s, ",\r\n");
		}
		if (*s == ',') {
			*s++ = '\0';
			continue;
		}
		if (*s && *s != '\r' && *s != '\n')
			return -EPROTO;
		*s = '\0';
		return n;
	}
}

/* %-decoding of an inventory key ('+' is a space, as S3 Inventory encodes). */
static int url_decode(char *s)
{
	char *w = s;
	for (; *s; s++) {
		if (*s == '+') {
			*w++ = ' ';
		} else if (*s == '%') {
			int h = util_hexval(s[1]), l = h < 0 ? -1 : util_hexval(s[2]);
			if (l < 0 || (h == 0 && l == 0))
				return -EPROTO;
			*w++ = (char)(h * 16 + l);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return 0;
}

static int inventory_file(struct inventory *inv, const char *path, const char *prefix)
{
	gzFile gz = gzopen(path, "rb");
	if (!gz) {
		ctl_err("%s: %s", path, strerror(errno ? errno : ENOENT));
		return -ENOENT;
	}
	int rc = 0;
	unsigned long lineno = 0;
	size_t plen = strlen(prefix);
	static char line[16384];
	char *f[64];
	while (gzgets(gz, line, sizeof(line))) {
		lineno++;
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			ctl_err("%s:%lu: line too long", path, lineno);
			rc = -EPROTO;
			break;
		}
		int n = csv_split(line, f, 64);
		uint64_t size = 0;
		if (n < inv->ncols || url_decode(f[inv->col_key]) ||
		    (f[inv->col_size][0] &&
		     util_parse_u64(f[inv->col_size], 0, UINT64_MAX, &size))) {
			ctl_err("%s:%lu: not a line of the manifest's schema", path, lineno);
			rc = -EPROTO;
			break;
		}
		if (strncmp(f[inv->col_key], prefix, plen))
			continue;
		if ((rc = keyset_add(inv->ks, f[inv->col_key], size,
				     inv->col_class >= 0 ? f[inv->col_class] : NULL)))
			break;
	}
	gzclose(gz);
	return rc;
}

/* Read the manifest, then every data file it names: looked for beside the manifest, then in
 * ../data/ (the layout `aws s3 cp --recursive` of an inventory destination gives). */
static int inventory_read(const char *manifest, const char *prefix, struct plan_run *pr)
{
	struct buf text = { 0 }, v = { 0 };
	struct inventory inv = { .ks = pr->keys, .col_key = -1, .col_size = -1, .col_class = -1 };
	int rc = -EPROTO;
	FILE *mf = fopen(manifest, "r");
	if (!mf) {
		ctl_err("%s: %s", manifest, strerror(errno));
		return -ENOENT;
	}
	char chunk[8192];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), mf)) > 0)
		if (buf_append(&text, chunk, got)) {
			fclose(mf);
			rc = -ENOMEM;
			goto out;
		}
	fclose(mf);
	if (buf_append(&text, "", 1)) {
		rc = -ENOMEM;
		goto out;
	}
	const char *p = text.data;
	if (json_field(&p, "fileFormat", &v) || strcmp(v.data, "CSV")) {
		ctl_err("%s: not an S3 Inventory manifest in CSV format (fileFormat)", manifest);
		goto out;
	}
	p = text.data;
	if (json_field(&p, "fileSchema", &v)) {
		ctl_err("%s: no fileSchema", manifest);
		goto out;
	}
	char *schema = v.data, *save = NULL;
	int col = 0;
	for (char *c = strtok_r(schema, ",", &save); c; c = strtok_r(NULL, ",", &save), col++) {
		while (*c == ' ')
			c++;
		if (!strcmp(c, "Key"))
			inv.col_key = col;
		else if (!strcmp(c, "Size"))
			inv.col_size = col;
		else if (!strcmp(c, "StorageClass"))
			inv.col_class = col;
	}
	inv.ncols = col;
	if (inv.col_key < 0 || inv.col_size < 0) {
		ctl_err("%s: the inventory has no Key or no Size field", manifest);
		goto out;
	}
	const char *files = strstr(text.data, "\"files\"");
	if (!files) {
		ctl_err("%s: no files list", manifest);
		goto out;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", manifest);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		strcpy(dir, ".");
	p = files;
	unsigned nfiles = 0;
	while ((rc = json_field(&p, "key", &v)) == 0) {
		const char *base = strrchr(v.data, '/') ? strrchr(v.data, '/') + 1 : v.data;
		char path[PATH_MAX * 2];
		snprintf(path, sizeof(path), "%s/%s", dir, base);
		if (access(path, R_OK))
			snprintf(path, sizeof(path), "%s/../data/%s", dir, base);
		if ((rc = inventory_file(&inv, path, prefix)))
			goto out;
		nfiles++;
		ctl_progress(0, 0, "%u inventory files read, %zu keys", nfiles, pr->keys->n);
	}
	if (rc != -ENOENT || !nfiles) {
		ctl_err("%s: %s", manifest,
			nfiles ? "malformed files list" : "the files list is empty");
		rc = -EPROTO;
		goto out;
	}
	pr->listed = pr->keys->n;
	rc = 0;
out:
	buf_free(&text);
	buf_free(&v);
	return rc;
}

/* --- output ----------------------------------------------------------------------- */

static const char *duration(double s, char *out, size_t n)
{
	if (s < 90)
		snprintf(out, n, "%.0f s", s);
	else if (s < 5400)
		snprintf(out, n, "%.0f min", s / 60);
	else if (s < 2 * 86400)
		snprintf(out, n, "%.1f h", s / 3600);
	else
		snprintf(out, n, "%.1f days", s / 86400);
	return out;
}

static void print_text(const struct ferry_config *cfg, const struct plan_run *pr,
		       const struct plan_tally *t, const struct plan_params *pp,
		       const struct plan_estimate *e, const char *inventory)
{
	char h1[16], h2[16], d[32];
	printf("bucket %s, prefix \"%s\": %llu keys %s\n\n", cfg->s3_bucket, cfg->s3_prefix,
	       (unsigned long long)pr->listed, inventory ? "from the inventory" : "listed");
	printf("%-28s %12s %12s\n", "", "objects", "bytes");
	printf("%-28s %12llu %12s\n", "files", (unsigned long long)t->files,
	       ctl_human((double)t->file_bytes, h1));
	for (int c = 0; c < PLAN_CLASSES; c++)
		printf("  %-26s %12llu %12s\n", plan_class_name[c],
		       (unsigned long long)t->class_files[c],
		       ctl_human((double)t->class_bytes[c], h1));
	printf("%-28s %12llu\n", "directories", (unsigned long long)t->dirs);
	printf("%-28s %12llu\n", "directory markers", (unsigned long long)t->markers);
	printf("%-28s %12llu %12s%s\n", "unreachable (not POSIX)",
	       (unsigned long long)t->unreachable, ctl_human((double)t->unreachable_bytes, h1),
	       t->unreachable ? "  never shown" : "");
	printf("%-28s %12llu %12s%s\n", "shadowed (a dir wins)", (unsigned long long)t->shadowed,
	       ctl_human((double)t->shadowed_bytes, h1), t->shadowed ? "  never shown" : "");
	printf("%-28s %12llu %12s%s\n", "archived (Glacier)", (unsigned long long)t->archived,
	       ctl_human((double)t->archived_bytes, h1),
	       t->archived ? "  restore before migrating" : "");
	printf("\ncrawl, %u host%s at %s/s and %llu files/s each: %s\n", pp->hosts,
	       pp->hosts == 1 ? "" : "s", ctl_human((double)e->rate, h1),
	       (unsigned long long)e->rate_files, duration(e->crawl_s, d, sizeof(d)));
	printf("S3 requests of the crawl: %llu GET, %llu LIST: $%.2f at list price "
	       "($%.4f/1,000 GET, $%.4f/1,000 LIST)\n",
	       (unsigned long long)e->get_requests, (unsigned long long)e->list_requests,
	       e->crawl_cost, pp->price_get, pp->price_list);
	printf("NFS space needed: %s (4 KiB blocks)\n", ctl_human((double)t->nfs_bytes, h1));
	printf("ledger per host: up to %s (%.0f bytes a file)\n",
	       ctl_human((double)e->ledger_bytes, h2), pp->ledger_record_bytes);
	printf("files written back by multipart: %llu\n", (unsigned long long)t->multipart_files);
}

/* A JSON string literal of s to stdout. */
static void json_put(const char *s)
{
	putchar('"');
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	putchar('"');
}

static void print_json(const struct ferry_config *cfg, const struct plan_run *pr,
		       const struct plan_tally *t, const struct plan_params *pp,
		       const struct plan_estimate *e, const char *inventory)
{
	printf("{\"bucket\":");
	json_put(cfg->s3_bucket);
	printf(",\"prefix\":");
	json_put(cfg->s3_prefix);
	printf(",\"source\":\"%s\",\"keys\":%llu,", inventory ? "inventory" : "list",
	       (unsigned long long)pr->listed);
	printf("\"files\":%llu,\"file_bytes\":%llu,\"directories\":%llu,\"markers\":%llu,",
	       (unsigned long long)t->files, (unsigned long long)t->file_bytes,
	       (unsigned long long)t->dirs, (unsigned long long)t->markers);
	printf("\"unreachable\":%llu,\"unreachable_bytes\":%llu,\"shadowed\":%llu,"
	       "\"shadowed_bytes\":%llu,\"archived\":%llu,\"archived_bytes\":%llu,",
	       (unsigned long long)t->unreachable, (unsigned long long)t->unreachable_bytes,
	       (unsigned long long)t->shadowed, (unsigned long long)t->shadowed_bytes,
	       (unsigned long long)t->archived, (unsigned long long)t->archived_bytes);
	printf("\"size_classes\":[");
	for (int c = 0; c < PLAN_CLASSES; c++)
		printf("%s{\"class\":\"%s\",\"files\":%llu,\"bytes\":%llu}", c ? "," : "",
		       plan_class_name[c], (unsigned long long)t->class_files[c],
		       (unsigned long long)t->class_bytes[c]);
	printf("],\"hosts\":%u,\"rate\":%llu,\"rate_files\":%llu,\"crawl_seconds\":%.1f,",
	       pp->hosts, (unsigned long long)e->rate, (unsigned long long)e->rate_files,
	       e->crawl_s);
	printf("\"get_requests\":%llu,\"list_requests\":%llu,\"crawl_cost_usd\":%.4f,",
	       (unsigned long long)e->get_requests, (unsigned long long)e->list_requests,
	       e->crawl_cost);
	printf("\"nfs_bytes\":%llu,\"ledger_bytes_per_host\":%llu,\"multipart_files\":%llu}\n",
	       (unsigned long long)t->nfs_bytes, (unsigned long long)e->ledger_bytes,
	       (unsigned long long)t->multipart_files);
}

static int cmd_plan(int argc, char **argv)
{
	const char *conf = NULL, *inventory = NULL;
	int json = 0, rc, ret = 1;
	struct plan_params pp;
	plan_params_default(&pp);
	uint64_t v;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--json")) {
			json = 1;
		} else if (!strcmp(a, "--inventory") && val) {
			inventory = val;
			i++;
		} else if (!strcmp(a, "--hosts") && val && !util_parse_u64(val, 1, 10000, &v)) {
			pp.hosts = (unsigned)v;
			i++;
		} else if (!strcmp(a, "--rate") && val && !util_parse_size(val, &pp.rate)) {
			i++;
		} else if (!strcmp(a, "--rate-files") && val &&
			   !util_parse_u64(val, 0, UINT64_MAX, &pp.rate_files)) {
			i++;
		} else if (a[0] != '-' && !conf) {
			conf = a;
		} else {
			return 2;
		}
	}
	if (!conf)
		return 2;

	struct ferry_config cfg;
	char err[512];
	struct keyset keys = { 0 };
	struct plan_run pr = { .keys = &keys, .started = util_now_s() };
	struct s3_client *c = NULL;
	cfg_init(&cfg);
	if (cfg_load_file(&cfg, conf, err, sizeof(err)) ||
	    creds_configure(&cfg, err, sizeof(err)) || cfg_finish(&cfg, err, sizeof(err))) {
		ctl_err("%s", err);
		goto out_cfg;
	}
	if (!pp.rate)
		pp.rate = cfg.rate;
	if (!pp.rate_files)
		pp.rate_files = cfg.rate_files;
	pp.revalidate = cfg.revalidate;
	if ((rc = plan_new(cfg.s3_prefix, cfg.s3_multipart_threshold, &pr.plan))) {
		ctl_err("%s", strerror(-rc));
		goto out_cfg;
	}
	if (inventory) {
		if (inventory_read(inventory, cfg.s3_prefix, &pr))
			goto out_plan;
	} else {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			goto out_plan;
		if ((rc = s3_client_new(&cfg, &c))) {
			ctl_err("cannot create the S3 client: %s", strerror(-rc));
			goto out_curl;
		}
		struct s3_list_opts o = { .prefix = cfg.s3_prefix };
		if ((rc = s3_list(c, &o, on_page, &pr))) {
			ctl_err("listing s3://%s/%s failed after %llu keys: %s", cfg.s3_bucket,
				cfg.s3_prefix, (unsigned long long)pr.listed, strerror(-rc));
			goto out_client;
		}
	}
	ctl_progress_done();
	if ((rc = keyset_feed(&keys, pr.plan))) {
		ctl_err("%s", strerror(-rc));
		goto out_client;
	}
	struct plan_tally t;
	struct plan_estimate e;
	plan_finish(pr.plan, &t);
	plan_estimate(&t, &pp, &e);
	if (json)
		print_json(&cfg, &pr, &t, &pp, &e, inventory);
	else
		print_text(&cfg, &pr, &t, &pp, &e, inventory);
	ret = 0;
out_client:
	s3_client_free(c);
out_curl:
	if (!inventory)
		curl_global_cleanup();
out_plan:
	plan_free(pr.plan);
	keyset_free(&keys);
out_cfg:
	cfg_free(&cfg);
	return ret;
}

const struct ctl_cmd ctl_cmd_plan = {
	"plan",
	"plan CONFIG [--inventory MANIFEST] [--hosts N] [--rate SIZE] [--rate-files N] [--json]",
	cmd_plan,
};
