/* ctl.c - helpers shared by ferryctl's commands (see ctl.h): xattrs, the mount's root
 * and ledger, progress bars. Never writes to a mount's ledger. */
#include "ctl/ctl.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "base/cfg.h"
#include "migrate/crawl.h"
#include "ledger/ledger.h"
#include "base/util.h"

void ctl_err(const char *fmt, ...)
{
	va_list ap;
	ctl_progress_done();
	fputs("ferryctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int ctl_getxattr_as(const char *path, const char *name, char **out, int follow)
{
	ssize_t (*get)(const char *, const char *, void *, size_t) = follow ? getxattr : lgetxattr;
	for (int tries = 0; tries < 3; tries++) {
		ssize_t n = get(path, name, NULL, 0);
		if (n < 0)
			return -errno;
		char *v = malloc((size_t)n + 1);
		if (!v)
			return -ENOMEM;
		ssize_t m = get(path, name, v, (size_t)n);
		if (m < 0) {
			int rc = -errno;
			free(v);
			if (rc == -ERANGE)
				continue;     /* it grew between the two calls */
			return rc;
		}
		v[m] = '\0';
		*out = v;
		return 0;
	}
	return -ERANGE;
}

int ctl_getxattr(const char *path, const char *name, char **out)
{
	return ctl_getxattr_as(path, name, out, 1);
}

int ctl_lgetxattr(const char *path, const char *name, char **out)
{
	return ctl_getxattr_as(path, name, out, 0);
}

int ctl_setxattr(const char *path, const char *name, const char *value)
{
	char full[128];
	snprintf(full, sizeof(full), "user.ferryfs.%s", name);
	return setxattr(path, full, value, strlen(value), 0) ? -errno : 0;
}

uint64_t ctl_stat_value(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ' ')
			return strtoull(p + kl + 1, NULL, 10);
	return 0;
}

static int is_ferry_mount(const char *root)
{
	FILE *f = fopen("/proc/mounts", "r");
	char line[8192], dev[4096], mnt[4096], type[256];
	int found = 0;
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%4095s %4095s %255s", dev, mnt, type) != 3)
			continue;
		util_unescape_octal(mnt);   /* /proc/mounts escapes spaces as \040 */
		if (!strcmp(mnt, root) && !strcmp(type, "fuse.ferryfs"))
			found = 1;
	}
	fclose(f);
	return found;
}

int ctl_mounts(char roots[][4096], int max)
{
	FILE *f = fopen("/proc/mounts", "r");
	char line[8192], dev[4096], mnt[4096], type[256];
	int n = 0;
	if (!f)
		return 0;
	while (n < max && fgets(line, sizeof(line), f))
		if (sscanf(line, "%4095s %4095s %255s", dev, mnt, type) == 3 &&
		    !strcmp(type, "fuse.ferryfs")) {
			util_unescape_octal(mnt);
			snprintf(roots[n++], 4096, "%s", mnt);
		}
	fclose(f);
	return n;
}

int ctl_mount_of(const char *path, char *root, char *rel)
{
	char real[PATH_MAX], cur[PATH_MAX];
	if (!realpath(path, real))
		return -errno;
	snprintf(cur, sizeof(cur), "%s", real);
	for (;;) {
		if (is_ferry_mount(cur)) {
			snprintf(root, PATH_MAX, "%s", cur);
			const char *r = real + strlen(cur);
			snprintf(rel, PATH_MAX, "%s", *r ? r : "/");
			return 0;
		}
		char *slash = strrchr(cur, '/');
		if (!slash || slash == cur) {
			if (!strcmp(cur, "/"))
				return -ENOENT;
			strcpy(cur, "/");
			continue;
		}
		*slash = '\0';
	}
}

/* The configuration of the ferryfs process serving root, from its command line (the same
 * parsing as ferryfs: [CONFIG] MOUNTPOINT [-o KEY=VALUE,...] [-f] [-d]). */
int ctl_mount_config(const char *root, struct ferry_config *out)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int rc = -ENOENT;
	if (!d)
		return -ENOENT;
	while (rc && (de = readdir(d))) {
		char p[300], comm[64] = "", cwd[PATH_MAX];
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(p, sizeof(p), "/proc/%s/comm", de->d_name);
		FILE *f = fopen(p, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, "ferryfs"))
			continue;
		snprintf(p, sizeof(p), "/proc/%s/cwd", de->d_name);
		ssize_t cl = readlink(p, cwd, sizeof(cwd) - 1);
		cwd[cl > 0 ? cl : 0] = '\0';
		snprintf(p, sizeof(p), "/proc/%s/cmdline", de->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		char args[65536];
		size_t n = fread(args, 1, sizeof(args) - 1, f);
		fclose(f);
		args[n] = '\0';
		const char *pos[2] = { NULL, NULL };
		const char *opts[64];
		int npos = 0, nopts = 0;
		for (size_t i = strlen(args) + 1; i < n; i += strlen(args + i) + 1) {
			const char *a = args + i;
			if (!strcmp(a, "-o") && i + 3 < n) {
				i += strlen(a) + 1;
				if (nopts < 64)
					opts[nopts++] = args + i;
			} else if (!strncmp(a, "-o", 2)) {
				if (nopts < 64)
					opts[nopts++] = a + 2;
			} else if (a[0] != '-' && npos < 2) {
				pos[npos++] = a;
			}
		}
		if (!npos)
			continue;
		const char *mp = pos[npos - 1], *conf = npos == 2 ? pos[0] : NULL;
		char abs[PATH_MAX * 2], real[PATH_MAX];
		if (mp[0] == '/')
			snprintf(abs, sizeof(abs), "%s", mp);
		else
			snprintf(abs, sizeof(abs), "%s/%s", cwd, mp);
		if (!realpath(abs, real) || strcmp(real, root))
			continue;
		struct ferry_config cfg;
		char err[512];
		cfg_init(&cfg);
		if (conf) {
			if (conf[0] == '/')
				snprintf(abs, sizeof(abs), "%s", conf);
			else
				snprintf(abs, sizeof(abs), "%s/%s", cwd, conf);
			cfg_load_file(&cfg, abs, err, sizeof(err));
		}
		for (int k = 0; k < nopts; k++) {
			char *copy = strdup(opts[k]), *save = NULL;
			for (char *kv = copy ? strtok_r(copy, ",", &save) : NULL; kv;
			     kv = strtok_r(NULL, ",", &save)) {
				char *eq = strchr(kv, '=');
				if (eq)
					*eq = '\0';
				cfg_set(&cfg, kv, eq ? eq + 1 : NULL, 0, err, sizeof(err));
			}
			util_free_secret(copy);
		}
		free(cfg.mountpoint);
		cfg.mountpoint = strdup(real);
		cfg_finish(&cfg, err, sizeof(err));
		if (!cfg.state_dir) {
			const char *b = strrchr(real, '/');
			char sd[PATH_MAX];
			snprintf(sd, sizeof(sd), "/var/lib/ferryfs/%s",
				 b && b[1] ? b + 1 : "default");
			cfg.state_dir = strdup(sd);
		}
		*out = cfg;
		rc = 0;
	}
	closedir(d);
	return rc;
}

static int state_from_proc(const char *root, char *out, size_t outlen)
{
	struct ferry_config cfg;
	int rc = ctl_mount_config(root, &cfg);
	if (rc)
		return rc;
	snprintf(out, outlen, "%s", cfg.state_dir ? cfg.state_dir : "");
	cfg_free(&cfg);
	return 0;
}

int ctl_state_dir(const char *root, const char *state, char *out, size_t outlen)
{
	char *v = NULL;
	if (state) {
		snprintf(out, outlen, "%s", state);
		return 0;
	}
	if (root && ctl_getxattr(root, "user.ferryfs.state_dir", &v) == 0) {
		snprintf(out, outlen, "%s", v);
		free(v);
		return 0;
	}
	return root ? state_from_proc(root, out, outlen) : -ENOENT;
}

int ctl_open_ledger(const char *root, const char *state, struct ledger **out)
{
	char dir[PATH_MAX];
	int rc = ctl_state_dir(root, state, dir, sizeof(dir));
	if (rc) {
		ctl_err("cannot find the ledger of %s (give --state DIR)",
			root ? root : "the mount");
		return rc;
	}
	rc = ledger_open(dir, LEDGER_RDONLY, out);
	if (rc)
		ctl_err("cannot open the ledger in %s: %s", dir, strerror(-rc));
	return rc;
}

int ctl_find_job(struct ledger *l, const char *dir, int kind, int prio, unsigned shard_i,
		 unsigned shard_n, const char *prefix, struct crawl_job *out)
{
	for (int i = 0; i < CRAWL_SLOTS; i++) {
		if (crawl_job_load(l, i, out))
			continue;
		if (out->spec.kind == kind && !strcmp(out->spec.dir, dir) &&
		    (kind == CRAWL_SCAN ||
		     (out->spec.prio == prio && out->spec.shard_i == shard_i &&
		      out->spec.shard_n == shard_n &&
		      !strcmp(out->spec.prefix, prefix ? prefix : ""))))
			return i;
	}
	return -ENOENT;
}

static int progress_shown;

void ctl_bar(double frac, int w, char *out)
{
	if (frac < 0)
		frac = 0;
	if (frac > 1)
		frac = 1;
	int full = (int)(frac * w + 0.5);
	out[0] = '[';
	for (int i = 0; i < w; i++)
		out[1 + i] = i < full ? '#' : '-';
	out[w + 1] = ']';
	out[w + 2] = '\0';
}

void ctl_progress(double done, double total, const char *fmt, ...)
{
	if (!isatty(STDERR_FILENO))
		return;
	char bar[64], label[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(label, sizeof(label), fmt, ap);
	va_end(ap);
	ctl_bar(total > 0 ? done / total : 0, 30, bar);
	fprintf(stderr, "\r%s %5.1f%% %s\033[K", bar, total > 0 ? 100.0 * done / total : 0.0,
		label);
	fflush(stderr);
	progress_shown = 1;
}

void ctl_progress_done(void)
{
	if (progress_shown) {
		fputc('\n', stderr);
		progress_shown = 0;
	}
}

const char *ctl_human(double b, char *out)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	int u = 0;
	while (b >= 1024 && u < 5) {
		b /= 1024;
		u++;
	}
	snprintf(out, 16, u ? "%.1f %s" : "%.0f %s", b, units[u]);
	return out;
}
