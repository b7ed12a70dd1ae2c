/* cfg.c - configuration: defaults, one parser for config-file lines and -o keys, the
 * checks that run once every source was applied, and the credential chain of spec 9.
 *
 * Never put a secret into an error message: errors name the key, never its value. */
#include "base/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

void cfg_init(struct ferry_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->s3_region = util_strdup("us-east-1");
	cfg->s3_prefix = util_strdup("");
	cfg->s3_connections = 16;
	cfg->s3_retries = 5;
	cfg->s3_timeout = 30;
	cfg->s3_part_size = 16ull << 20;
	cfg->s3_multipart_threshold = 64ull << 20;
	cfg->readahead_max = 256ull << 20;
	cfg->kernel_readahead = 1ull << 20;
	cfg->nfs_connections = 8;
	cfg->workers = 4;
	cfg->migrate_on = MIGRATE_ON_OPEN;
	cfg->mirror = MIRROR_ASYNC;
	cfg->revalidate = 30;
	cfg->revalidate_sweep = 21600;
	cfg->rename_dir_limit = 10000;
	cfg->file_mode = 0644;
	cfg->dir_mode = 0755;
	cfg->uid = getuid();
	cfg->gid = getgid();
	cfg->log = LOG_TO_SYSLOG;
	cfg->log_level = LOG_NOTICE;
}

void cfg_free(struct ferry_config *cfg)
{
	char **strs[] = { &cfg->s3_endpoint, &cfg->s3_bucket, &cfg->s3_prefix, &cfg->s3_region,
			  &cfg->s3_profile, &cfg->s3_ca_file, &cfg->s3_access_key_id, &cfg->nfs,
			  &cfg->s3_sse, &cfg->s3_sse_kms_key_id, &cfg->s3_sse_c_key_file,
			  &cfg->state_dir, &cfg->mountpoint, &cfg->name };
	for (size_t i = 0; i < ARRAY_SIZE(strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
	util_free_secret(cfg->s3_secret_access_key);
	cfg->s3_secret_access_key = NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* --- value parsers ----------------------------------------------------------------- */

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
	    !strcasecmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false") ||
		 !strcasecmp(v, "off"))
		*out = 0;
	else
		return -EINVAL;
	return 0;
}

static int parse_mode(const char *v, mode_t *out)
{
	char *end;
	if (!*v)
		return -EINVAL;
	errno = 0;
	unsigned long m = strtoul(v, &end, 8);
	if (errno || *end || m > 07777)
		return -EINVAL;
	*out = (mode_t)m;
	return 0;
}

static int parse_id(const char *v, unsigned *out)
{
	uint64_t n;
	if (util_parse_u64(v, 0, UINT32_MAX - 1, &n))
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static int parse_uint(const char *v, unsigned min, unsigned max, unsigned *out)
{
	uint64_t n;
	if (util_parse_u64(v, min, max, &n))
		return -EINVAL;
	*out = (unsigned)n;
	return 0;
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);
	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

/* --- keys -------------------------------------------------------------------------- */

enum key_kind { K_STR, K_BOOL, K_UINT, K_SIZE, K_MODE, K_ID, K_SPECIAL, K_IGNORE };

#define KF_FILE_ONLY 0x1u   /* secrets: refused on the command line */
#define KF_SAVED 0x2u       /* how to reach the stores: written by cfg_format_saved */

struct cfg_key {
	const char *name;
	enum key_kind kind;
	size_t off;            /* offset of the field in struct ferry_config */
	unsigned min, max;     /* K_UINT bounds */
	unsigned flags;        /* KF_* */
	const char *what;      /* what a valid value looks like, for the error line */
};

#define F(field) offsetof(struct ferry_config, field)
static const struct cfg_key cfg_keys[] = {
	{ "s3_endpoint", K_STR, F(s3_endpoint), 0, 0, KF_SAVED, "an http:// or https:// URL" },
	{ "s3_bucket", K_STR, F(s3_bucket), 0, 0, KF_SAVED, "a bucket name" },
	{ "s3_prefix", K_SPECIAL, F(s3_prefix), 0, 0, KF_SAVED, "a key prefix" },
	{ "s3_region", K_STR, F(s3_region), 0, 0, KF_SAVED, "a region name" },
	{ "s3_path_style", K_BOOL, F(s3_path_style), 0, 0, KF_SAVED, "0 or 1" },
	{ "s3_profile", K_STR, F(s3_profile), 0, 0, KF_SAVED, "a profile name" },
	{ "s3_ca_file", K_STR, F(s3_ca_file), 0, 0, KF_SAVED, "a PEM file path" },
	{ "s3_insecure_tls", K_BOOL, F(s3_insecure_tls), 0, 0, KF_SAVED, "0 or 1" },
	{ "s3_access_key_id", K_STR, F(s3_access_key_id), 0, 0, 0, "an access key id" },
	{ "s3_secret_access_key", K_STR, F(s3_secret_access_key), 0, 0, KF_FILE_ONLY,
	  "a secret key" },
	{ "s3_connections", K_UINT, F(s3_connections), 1, 1024, KF_SAVED, "1..1024" },
	{ "s3_retries", K_UINT, F(s3_retries), 0, 100, KF_SAVED, "0..100" },
	{ "s3_timeout", K_UINT, F(s3_timeout), 1, 3600, KF_SAVED, "1..3600 seconds" },
	{ "s3_part_size", K_SIZE, F(s3_part_size), 0, 0, KF_SAVED, "a size from 5M to 5G" },
	{ "s3_multipart_threshold", K_SIZE, F(s3_multipart_threshold), 0, 0, KF_SAVED, "a size" },
	{ "s3_sse", K_STR, F(s3_sse), 0, 0, KF_SAVED, "AES256 or aws:kms" },
	{ "s3_sse_kms_key_id", K_STR, F(s3_sse_kms_key_id), 0, 0, KF_SAVED, "a KMS key id" },
	{ "s3_sse_c_key_file", K_STR, F(s3_sse_c_key_file), 0, 0, KF_SAVED,
	  "the path of a file holding a 256-bit key, readable by its owner alone" },
	{ "s3_request_payer", K_BOOL, F(s3_request_payer), 0, 0, KF_SAVED, "0 or 1" },
	{ "readahead_max", K_SIZE, F(readahead_max), 0, 0, 0,
	  "a size such as 256M (0: no read-ahead)" },
	{ "kernel_readahead", K_SIZE, F(kernel_readahead), 0, 0, 0,
	  "a size up to 64M (0: the kernel's default)" },
	{ "nfs", K_STR, F(nfs), 0, 0, KF_SAVED,
	  "nfs://host/export[/dir][?version=3|4] or an absolute path" },
	{ "nfs_connections", K_UINT, F(nfs_connections), 1, 256, KF_SAVED, "1..256" },
	{ "state_dir", K_STR, F(state_dir), 0, 0, 0, "an absolute path on local disk" },
	{ "name", K_STR, F(name), 0, 0, KF_SAVED, "a mount name" },
	{ "workers", K_UINT, F(workers), 1, 256, 0, "1..256" },
	{ "migrate_on", K_SPECIAL, 0, 0, 0, 0, "open or never" },
	{ "rate", K_SIZE, F(rate), 0, 0, 0, "bytes/s with K/M/G suffixes (0: unlimited)" },
	{ "rate_files", K_SIZE, F(rate_files), 0, 0, 0, "files/s (0: unlimited)" },
	{ "mirror", K_SPECIAL, 0, 0, 0, 0, "async or off" },
	{ "revalidate", K_UINT, F(revalidate), 0, 86400 * 365, 0, "seconds" },
	{ "revalidate_sweep", K_UINT, F(revalidate_sweep), 0, 86400 * 365, 0, "seconds" },
	{ "rename_dir_limit", K_SIZE, F(rename_dir_limit), 0, 0, KF_SAVED, "a number of objects" },
	{ "file_mode", K_MODE, F(file_mode), 0, 0, KF_SAVED, "an octal mode such as 0644" },
	{ "dir_mode", K_MODE, F(dir_mode), 0, 0, KF_SAVED, "an octal mode such as 0755" },
	{ "uid", K_ID, F(uid), 0, 0, KF_SAVED, "a numeric uid" },
	{ "gid", K_ID, F(gid), 0, 0, KF_SAVED, "a numeric gid" },
	{ "allow_other", K_BOOL, F(allow_other), 0, 0, 0, "0 or 1" },
	{ "xattr_list", K_BOOL, F(xattr_list), 0, 0, 0, "0 or 1" },
	{ "log", K_SPECIAL, 0, 0, 0, 0, "syslog or stderr" },
	{ "log_level", K_SPECIAL, 0, 0, 0, 0, "error, warning, notice, info or debug" },
	/* Generic mount options that mount(8)/fstab hand to every filesystem: accepted and
	 * ignored (the FUSE layer applies the ones that mean something, see ferryfs.c). */
	{ "rw", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "defaults", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "_netdev", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "noauto", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "auto", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "nofail", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "user", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "users", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "nouser", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "dev", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "nodev", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "suid", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "nosuid", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "exec", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "noexec", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "atime", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "noatime", K_IGNORE, 0, 0, 0, 0, NULL },
	{ "relatime", K_IGNORE, 0, 0, 0, 0, NULL },
};
#undef F

static const struct cfg_key *find_key(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(cfg_keys); i++)
		if (!strcmp(cfg_keys[i].name, key))
			return &cfg_keys[i];
	return NULL;
}

static int set_special(struct ferry_config *cfg, const char *key, const char *v)
{
	if (!strcmp(key, "s3_prefix")) {
		while (*v == '/')
			v++;
		size_t n = strlen(v);
		char *p = malloc(n + 2);
		if (!p)
			return -ENOMEM;
		memcpy(p, v, n + 1);
		if (n && p[n - 1] != '/') {
			p[n] = '/';
			p[n + 1] = '\0';
		}
		free(cfg->s3_prefix);
		cfg->s3_prefix = p;
		return 0;
	}
	if (!strcmp(key, "migrate_on")) {
		if (!strcmp(v, "open"))
			cfg->migrate_on = MIGRATE_ON_OPEN;
		else if (!strcmp(v, "never"))
			cfg->migrate_on = MIGRATE_ON_NEVER;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(key, "mirror")) {
		if (!strcmp(v, "async"))
			cfg->mirror = MIRROR_ASYNC;
		else if (!strcmp(v, "off"))
			cfg->mirror = MIRROR_OFF;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(key, "log")) {
		if (!strcmp(v, "syslog"))
			cfg->log = LOG_TO_SYSLOG;
		else if (!strcmp(v, "stderr"))
			cfg->log = LOG_TO_STDERR;
		else
			return -EINVAL;
		return 0;
	}
	if (!strcmp(key, "log_level")) {
		int l = log_parse_level(v);
		if (l < 0)
			return -EINVAL;
		cfg->log_level = l;
		return 0;
	}
	return -EINVAL;
}

int cfg_set(struct ferry_config *cfg, const char *key, const char *value, int from_file,
	    char *err, size_t errlen)
{
	const struct cfg_key *k = find_key(key);
	if (!k || (k->kind == K_IGNORE && value && from_file))
		return fail(err, errlen, "unknown option '%s'", key);
	if (k->kind == K_IGNORE)
		return 0;
	if ((k->flags & KF_FILE_ONLY) && !from_file)
		return fail(err, errlen,
			    "option '%s' is accepted only in a config file readable by its owner "
			    "alone "
			    "(a command line is visible to every user through ps)", key);
	if (!value && k->kind == K_BOOL)
		value = "1";          /* a bare flag, as in fstab's "allow_other" */
	if (!value)
		return fail(err, errlen, "option '%s' needs a value (%s)", key, k->what);

	char *base = (char *)cfg;
	int rc = 0;
	switch (k->kind) {
	case K_STR:
		if (!*value)
			return fail(err, errlen, "option '%s' is empty: expected %s", key, k->what);
		rc = set_str((char **)(base + k->off), value);
		if (!rc && strcmp(key, "s3_region") == 0)
			cfg->s3_region_set = 1;
		break;
	case K_BOOL:
		rc = parse_bool(value, (int *)(base + k->off));
		break;
	case K_UINT:
		rc = parse_uint(value, k->min, k->max, (unsigned *)(base + k->off));
		break;
	case K_SIZE:
		rc = util_parse_size(value, (uint64_t *)(base + k->off));
		break;
	case K_MODE:
		rc = parse_mode(value, (mode_t *)(base + k->off));
		break;
	case K_ID:
		rc = parse_id(value, (unsigned *)(base + k->off));
		break;
	case K_SPECIAL:
		rc = set_special(cfg, key, value);
		break;
	case K_IGNORE:
		break;
	}
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return fail(err, errlen, "bad value for option '%s': expected %s", key, k->what);
	return 0;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int cfg_load_file(struct ferry_config *cfg, const char *path, char *err, size_t errlen)
{
	int rc = 0;
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int holds_secret = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
		return rc;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "config file %s is not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			/* Name the key only when it is one: the line may be a secret that lost
			 * its "key =" (a wrapped line, "s3_secret_access_key: ..."). */
			size_t klen = strcspn(s, " \t:");
			char kname[40] = "";
			if (klen < sizeof(kname)) {
				memcpy(kname, s, klen);
				kname[klen] = '\0';
			}
			if (find_key(kname))
				rc = fail(err, errlen,
					  "%s:%u: expected 'key = value' (key '%s' has no '=')",
					  path, lineno, kname);
			else
				rc = fail(err, errlen, "%s:%u: expected 'key = value'", path,
					  lineno);
			goto out;
		}
		*eq = '\0';
		char *key = trim(s);
		char *value = trim(eq + 1);
		if (!strcmp(key, "s3_secret_access_key"))
			holds_secret = 1;
		char kerr[256];
		rc = cfg_set(cfg, key, value, 1, kerr, sizeof(kerr));
		if (rc) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, kerr);
			goto out;
		}
	}
	if (holds_secret && (st.st_mode & (S_IRWXG | S_IRWXO))) {
		snprintf(err, errlen,
			 "config file %s holds s3_secret_access_key but group or others can read "
			 "it: chmod 600 it", path);
		rc = -EPERM;
	}
out:
	free(line);
	fclose(f);
	return rc;
}

int cfg_finish(struct ferry_config *cfg, char *err, size_t errlen)
{
	if (!cfg->s3_bucket)
		return fail(err, errlen, "option 's3_bucket' is required");
	if (!cfg->nfs)
		return fail(err, errlen, "option 'nfs' is required "
			    "(nfs://host/export[/dir] or an absolute path)");
	if (strncmp(cfg->nfs, "nfs://", 6) != 0 && cfg->nfs[0] != '/')
		return fail(err, errlen, "bad value for option 'nfs': "
			    "expected nfs://host/export[/dir] or an absolute path");
	if (cfg->s3_endpoint) {
		if (strncmp(cfg->s3_endpoint, "http://", 7) &&
		    strncmp(cfg->s3_endpoint, "https://", 8))
			return fail(err, errlen, "bad value for option 's3_endpoint': "
				    "expected an http:// or https:// URL");
		size_t n = strlen(cfg->s3_endpoint);
		while (n > 8 && cfg->s3_endpoint[n - 1] == '/')
			cfg->s3_endpoint[--n] = '\0';
	} else {
		char url[300];
		snprintf(url, sizeof(url), "https://s3.%s.amazonaws.com", cfg->s3_region);
		if (set_str(&cfg->s3_endpoint, url))
			return -ENOMEM;
	}
	if (cfg->s3_part_size < (5ull << 20) || cfg->s3_part_size > (5ull << 30))
		return fail(err, errlen,
			    "bad value for option 's3_part_size': expected a size from 5M to 5G");
	if (cfg->s3_multipart_threshold < cfg->s3_part_size)
		cfg->s3_multipart_threshold = cfg->s3_part_size;
	if (cfg->s3_sse && strcmp(cfg->s3_sse, "AES256") && strcmp(cfg->s3_sse, "aws:kms"))
		return fail(err, errlen,
			    "bad value for option 's3_sse': expected AES256 or aws:kms");
	if (cfg->s3_sse_kms_key_id && (!cfg->s3_sse || strcmp(cfg->s3_sse, "aws:kms")))
		return fail(err, errlen, "option 's3_sse_kms_key_id' needs s3_sse=aws:kms");
	if (cfg->s3_sse && cfg->s3_sse_c_key_file)
		return fail(err, errlen, "options 's3_sse' and 's3_sse_c_key_file' exclude each "
			    "other (a customer key is its own encryption)");
	if (cfg->s3_sse_c_key_file && cfg->s3_sse_c_key_file[0] != '/')
		return fail(err, errlen, "bad value for option 's3_sse_c_key_file': expected an "
			    "absolute path");
	if (cfg->kernel_readahead > (64ull << 20))
		return fail(err, errlen,
			    "bad value for option 'kernel_readahead': expected a size up to 64M "
			    "(0: the kernel's default)");
	if (!cfg->name && cfg->mountpoint) {
		const char *b = strrchr(cfg->mountpoint, '/');
		b = b && b[1] ? b + 1 : "root";
		if (set_str(&cfg->name, b))
			return -ENOMEM;
	}
	if (!cfg->state_dir) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "/var/lib/ferryfs/%s",
			 cfg->name ? cfg->name : "default");
		if (set_str(&cfg->state_dir, dir))
			return -ENOMEM;
	}
	if (cfg->state_dir[0] != '/')
		return fail(err, errlen, "bad value for option 'state_dir': "
			    "expected an absolute path on local disk");
	if ((cfg->s3_access_key_id != NULL) != (cfg->s3_secret_access_key != NULL))
		return fail(err, errlen, "option '%s' is set without '%s'",
			    cfg->s3_access_key_id ? "s3_access_key_id" : "s3_secret_access_key",
			    cfg->s3_access_key_id ? "s3_secret_access_key" : "s3_access_key_id");
	return 0;
}

int cfg_format_saved(const struct ferry_config *cfg, struct buf *out)
{
	const char *base = (const char *)cfg;
	int rc = 0;
	for (size_t i = 0; i < ARRAY_SIZE(cfg_keys) && !rc; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const void *v = base + k->off;
		if (!(k->flags & KF_SAVED))
			continue;
		switch (k->kind) {
		case K_STR:
		case K_SPECIAL:     /* s3_prefix: a string as it is kept */
			if (*(char *const *)v && **(char *const *)v)
				rc = buf_printf(out, "%s = %s\n", k->name, *(char *const *)v);
			break;
		case K_BOOL:
			rc = buf_printf(out, "%s = %d\n", k->name, *(const int *)v);
			break;
		case K_UINT:
		case K_ID:
			rc = buf_printf(out, "%s = %u\n", k->name, *(const unsigned *)v);
			break;
		case K_SIZE:
			rc = buf_printf(out, "%s = %llu\n", k->name,
					(unsigned long long)*(const uint64_t *)v);
			break;
		case K_MODE:
			rc = buf_printf(out, "%s = 0%o\n", k->name, (unsigned)*(const mode_t *)v);
			break;
		case K_IGNORE:
			break;
		}
	}
	return rc;
}
