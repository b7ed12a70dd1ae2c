/* creds.c - the credentials of a mount (see creds.h): the chain that picks a source, the
 * current credentials, and the thread that renews them.
 *
 * LOCKS (order: fetch_lock before lock; lock is never held during a fetch or a log call)
 * - lock protects cur, gen, fetched, next_try, failures, want, stop, file_sig and the
 *   "expired" log limiter; cond (with lock) wakes the renewal thread.
 * - fetch_lock serializes fetches from src (a credsrc is not reentrant: a token file,
 *   a process), so that many requests finding the credentials stale cause one fetch.
 * - src, source and the margins derived per generation are written under lock too;
 *   src itself is immutable after creds_new. */
#include "s3/creds.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/log.h"
#include "base/stats.h"
#include "base/util.h"
#include "s3/awsini.h"

#define CREDS_AHEAD_MAX 900     /* renew at most this many seconds before expiry */
#define CREDS_MARGIN_MAX 300    /* never sign within this many seconds of expiry */
#define CREDS_BACKOFF_MAX 60
#define CREDS_FILE_POLL 5
#define CREDS_MAX_ROLE_DEPTH 5

/* Bumped by creds_sighup; each renewal thread compares it with the value it last saw. */
static atomic_uint creds_hup_gen;

struct creds {
	struct credsrc *src;
	char source[200];
	pthread_mutex_t fetch_lock;   /* serializes fetches from src */
	pthread_mutex_t lock;         /* protects everything below (see the top) */
	pthread_cond_t cond;
	struct creds_value cur;
	unsigned gen;
	time_t fetched;               /* when cur was fetched */
	time_t next_try;              /* after a failure: no new fetch before this */
	unsigned failures;            /* consecutive failed renewals */
	int want, stop;
	struct stat file_sig;         /* CREDSRC_FILE: the file as it was when read */
	time_t expired_logged;
	unsigned hup_seen;            /* creds_hup_gen when last looked at (thread only) */
	pthread_t thread;
	int running;
};

/* ---- the shared files and the profile ----------------------------------------------- */

struct creds_files {
	const char *profile;
	char config_path[PATH_MAX], creds_path[PATH_MAX];
	struct awsini *config, *credentials;
	int explicit_profile;
};

static const char *creds_home(void)
{
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	return home;
}

static int creds_files_load(const struct ferry_config *cfg, struct creds_files *f, char *err,
			    size_t errlen)
{
	const char *e;
	unsigned line = 0;
	int rc;
	memset(f, 0, sizeof(*f));
	f->profile = cfg->s3_profile;
	f->explicit_profile = f->profile != NULL;
	if (!f->profile && (e = getenv("AWS_PROFILE")) && *e) {
		f->profile = e;
		f->explicit_profile = 1;
	}
	if (!f->profile)
		f->profile = "default";
	if ((e = getenv("AWS_CONFIG_FILE")) && *e)
		snprintf(f->config_path, sizeof(f->config_path), "%s", e);
	else
		snprintf(f->config_path, sizeof(f->config_path), "%s/.aws/config", creds_home());
	if ((e = getenv("AWS_SHARED_CREDENTIALS_FILE")) && *e)
		snprintf(f->creds_path, sizeof(f->creds_path), "%s", e);
	else
		snprintf(f->creds_path, sizeof(f->creds_path), "%s/.aws/credentials", creds_home());
	rc = awsini_load(f->config_path, 1, &f->config, &line);
	if (rc && rc != -ENOENT)
		goto bad_config;
	rc = awsini_load(f->creds_path, 0, &f->credentials, &line);
	if (rc && rc != -ENOENT) {
		awsini_free(f->config);
		f->config = NULL;
		snprintf(err, errlen, "the AWS credentials file %s: %s", f->creds_path,
			 rc == -EINVAL ? "malformed" : strerror(-rc));
		goto bad;
	}
	return 0;
bad_config:
	snprintf(err, errlen, "the AWS config file %s: %s", f->config_path,
		 rc == -EINVAL ? "malformed" : strerror(-rc));
bad:
	if (rc == -EINVAL)
		snprintf(err + strlen(err), errlen - strlen(err), " at line %u", line);
	return rc == -ENOMEM ? rc : -EINVAL;
}

static void creds_files_free(struct creds_files *f)
{
	awsini_free(f->config);
	awsini_free(f->credentials);
	f->config = f->credentials = NULL;
}

/* A profile's key: the credentials file's value wins over the config file's (botocore). */
static const char *creds_prof(const struct creds_files *f, const char *profile, const char *key)
{
	const char *v = awsini_get(f->credentials, profile, key);
	if (!v || !*v)
		v = awsini_get(f->config, profile, key);
	return v && *v ? v : NULL;
}

static const char *creds_env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

int creds_configure(struct ferry_config *cfg, char *err, size_t errlen)
{
	struct creds_files f;
	const char *v;
	int rc = creds_files_load(cfg, &f, err, errlen);
	if (rc)
		return rc;
	if (cfg->s3_profile && !awsini_has_profile(f.config, f.profile) &&
	    !awsini_has_profile(f.credentials, f.profile)) {
		snprintf(err, errlen, "option 's3_profile': profile '%s' not found in %s or %s",
			 f.profile, f.config_path, f.creds_path);
		rc = -EINVAL;
		goto out;
	}
	if (!cfg->s3_region_set && ((v = creds_env("AWS_REGION")) ||
				    (v = creds_env("AWS_DEFAULT_REGION")) ||
				    (v = creds_prof(&f, f.profile, "region")))) {
		char *r = util_strdup(v);
		if (!r) {
			rc = -ENOMEM;
			goto out;
		}
		free(cfg->s3_region);
		cfg->s3_region = r;
	}
	if (!cfg->s3_endpoint && ((v = creds_env("AWS_ENDPOINT_URL_S3")) ||
				  (v = creds_env("AWS_ENDPOINT_URL")) ||
				  (v = creds_prof(&f, f.profile, "endpoint_url")))) {
		if (!(cfg->s3_endpoint = util_strdup(v)))
			rc = -ENOMEM;
	}
out:
	creds_files_free(&f);
	return rc;
}

/* ---- building the source ------------------------------------------------------------ */

static int creds_dup(char **dst, const char *v)
{
	if (!v)
		return 0;
	return (*dst = util_strdup(v)) ? 0 : -ENOMEM;
}

static int creds_sts_params(const struct ferry_config *cfg, struct credsrc *s)
{
	const char *u = creds_env("AWS_ENDPOINT_URL_STS");
	const char *region = cfg->s3_region ? cfg->s3_region : "us-east-1";
	if (!u)
		u = creds_env("AWS_ENDPOINT_URL");
	s->timeout = 10;
	if (creds_dup(&s->region, region))
		return -ENOMEM;
	if (u) {
		size_t n = strlen(u);
		while (n > 8 && u[n - 1] == '/')
			n--;
		return (s->sts_url = util_strndup(u, n)) ? 0 : -ENOMEM;
	}
	struct buf b = { 0 };
	if (buf_printf(&b, "https://sts.%s.amazonaws.com", region))
		return -ENOMEM;
	s->sts_url = b.data;
	return 0;
}

static struct credsrc *creds_fixed(const char *name, const char *id, const char *secret,
				   const char *token)
{
	struct credsrc *s = credsrc_new(CREDSRC_FIXED, name);
	struct creds_value v = { (char *)id, (char *)secret,
				 (char *)(token && *token ? token : NULL), 0 };
	if (s && creds_value_copy(&s->fixed, &v)) {
		credsrc_free(s);
		s = NULL;
	}
	return s;
}

static struct credsrc *creds_env_source(void)
{
	const char *id = creds_env("AWS_ACCESS_KEY_ID"),
		   *secret = creds_env("AWS_SECRET_ACCESS_KEY");
	if (!id || !secret)
		return NULL;
	return creds_fixed("environment", id, secret, getenv("AWS_SESSION_TOKEN"));
}

static struct credsrc *creds_file_source(const char *path, int is_config, const char *profile)
{
	char name[200];
	snprintf(name, sizeof(name), "profile %.60s (%s file %.80s)", profile,
		 is_config ? "config" : "credentials", path);
	struct credsrc *s = credsrc_new(CREDSRC_FILE, name);
	if (s && (creds_dup(&s->path, path) || creds_dup(&s->profile, profile))) {
		credsrc_free(s);
		s = NULL;
	}
	if (s)
		s->is_config = is_config;
	return s;
}

static int creds_container_source(struct credsrc **out, char *err, size_t errlen)
{
	const char *rel = creds_env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = creds_env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	char *url = NULL;
	*out = NULL;
	if (!rel && !full)
		return 0;
	int rc = credsrc_container_url(rel, full, &url);
	if (rc == -EINVAL) {
		snprintf(err, errlen, "AWS_CONTAINER_CREDENTIALS_FULL_URI: not https and not a "
			 "loopback or container-agent address (the token is sent only there)");
		return rc;
	}
	if (rc)
		return rc;
	char name[200];
	snprintf(name, sizeof(name), "container credentials (%.150s)", url);
	struct credsrc *s = credsrc_new(CREDSRC_CONTAINER, name);
	if (!s) {
		free(url);
		return -ENOMEM;
	}
	s->url = url;
	s->timeout = 2;
	if (creds_dup(&s->auth_token_file, creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")) ||
	    creds_dup(&s->auth_token, creds_env("AWS_CONTAINER_AUTHORIZATION_TOKEN"))) {
		credsrc_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static struct credsrc *creds_imds_source(const struct creds_files *f)
{
	const char *ep = creds_env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	if (!ep)
		ep = creds_prof(f, f->profile, "ec2_metadata_service_endpoint");
	if (!ep)
		ep = "http://169.254.169.254";
	char name[200];
	snprintf(name, sizeof(name), "instance metadata (%.150s)", ep);
	struct credsrc *s = credsrc_new(CREDSRC_IMDS, name);
	if (!s)
		return NULL;
	size_t n = strlen(ep);
	while (n > 8 && ep[n - 1] == '/')
		n--;
	s->timeout = 2;
	if (!(s->endpoint = util_strndup(ep, n))) {
		credsrc_free(s);
		return NULL;
	}
	return s;
}

static int creds_webid(const struct ferry_config *cfg, const char *token_file,
		       const char *role_arn, const char *session, struct credsrc **out)
{
	char name[200];
	snprintf(name, sizeof(name), "web identity (%.150s)", role_arn);
	struct credsrc *s = credsrc_new(CREDSRC_WEBID, name);
	if (!s || creds_dup(&s->token_file, token_file) || creds_dup(&s->role_arn, role_arn) ||
	    creds_dup(&s->session_name, session) || creds_sts_params(cfg, s)) {
		credsrc_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

static int creds_profile_source(const struct ferry_config *cfg, const struct creds_files *f,
				const char *profile, int depth, struct credsrc **out,
				char *err, size_t errlen);

/* role_arn with source_profile or credential_source in profile: an AssumeRole source. */
static int creds_role(const struct ferry_config *cfg, const struct creds_files *f,
		      const char *profile, int depth, struct credsrc **out, char *err,
		      size_t errlen)
{
	const char *arn = creds_prof(f, profile, "role_arn");
	const char *sp = creds_prof(f, profile, "source_profile");
	const char *cs = creds_prof(f, profile, "credential_source");
	struct credsrc *src = NULL;
	int rc = 0;
	*out = NULL;
	if (sp && cs) {
		snprintf(err, errlen, "profile %s: both source_profile and credential_source",
			 profile);
		return -EINVAL;
	}
	if (sp) {
		if (depth >= CREDS_MAX_ROLE_DEPTH) {
			snprintf(err, errlen, "profile %s: source_profile chain too long (a loop?)",
				 profile);
			return -EINVAL;
		}
		/* a profile that is its own source uses its own keys */
		if (strcmp(sp, profile) == 0) {
			if (creds_prof(f, sp, "aws_access_key_id"))
				src = creds_file_source(
					awsini_get(f->credentials, sp, "aws_access_key_id") ?
						f->creds_path :
						f->config_path,
					awsini_get(f->credentials, sp, "aws_access_key_id") ? 0 : 1,
					sp);
			rc = src ? 0 : -ENOMEM;
		} else {
			rc = creds_profile_source(cfg, f, sp, depth + 1, &src, err, errlen);
		}
		if (!rc && !src) {
			snprintf(err, errlen, "profile %s: source_profile %s has no credentials",
				 profile, sp);
			rc = -EINVAL;
		}
	} else if (strcasecmp(cs, "Environment") == 0) {
		if (!(src = creds_env_source())) {
			snprintf(err, errlen, "profile %s: credential_source Environment, but "
				 "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set", profile);
			rc = -EINVAL;
		}
	} else if (strcasecmp(cs, "Ec2InstanceMetadata") == 0) {
		rc = (src = creds_imds_source(f)) ? 0 : -ENOMEM;
	} else if (strcasecmp(cs, "EcsContainer") == 0) {
		rc = creds_container_source(&src, err, errlen);
		if (!rc && !src) {
			snprintf(err, errlen, "profile %s: credential_source EcsContainer, but no "
				 "AWS_CONTAINER_CREDENTIALS_* is set", profile);
			rc = -EINVAL;
		}
	} else {
		snprintf(err, errlen, "profile %s: credential_source %.40s is not Environment, "
			 "Ec2InstanceMetadata or EcsContainer", profile, cs);
		rc = -EINVAL;
	}
	if (rc) {
		credsrc_free(src);
		return rc;
	}
	char name[200];
	snprintf(name, sizeof(name), "profile %.40s (assume role %.100s)", profile, arn);
	struct credsrc *s = credsrc_new(CREDSRC_ROLE, name);
	if (!s || creds_dup(&s->role_arn, arn) ||
	    creds_dup(&s->session_name, creds_prof(f, profile, "role_session_name")) ||
	    creds_dup(&s->external_id, creds_prof(f, profile, "external_id")) ||
	    creds_dup(&s->duration, creds_prof(f, profile, "duration_seconds")) ||
	    creds_sts_params(cfg, s)) {
		credsrc_free(s);
		credsrc_free(src);
		return -ENOMEM;
	}
	s->source = src;
	*out = s;
	return 0;
}

/* What a profile provides, in botocore's order (steps 2-6 of creds.h). *out NULL: nothing. */
static int creds_profile_source(const struct ferry_config *cfg, const struct creds_files *f,
				const char *profile, int depth, struct credsrc **out,
				char *err, size_t errlen)
{
	const char *v;
	*out = NULL;
	if (creds_prof(f, profile, "role_arn") && (creds_prof(f, profile, "source_profile") ||
						   creds_prof(f, profile, "credential_source")))
		return creds_role(cfg, f, profile, depth, out, err, errlen);
	if (depth == 0 && creds_env("AWS_WEB_IDENTITY_TOKEN_FILE") && creds_env("AWS_ROLE_ARN"))
		return creds_webid(cfg, creds_env("AWS_WEB_IDENTITY_TOKEN_FILE"),
				   creds_env("AWS_ROLE_ARN"), creds_env("AWS_ROLE_SESSION_NAME"),
				   out);
	if ((v = creds_prof(f, profile, "web_identity_token_file")) &&
	    creds_prof(f, profile, "role_arn"))
		return creds_webid(cfg, v, creds_prof(f, profile, "role_arn"),
				   creds_prof(f, profile, "role_session_name"), out);
	if (awsini_get(f->credentials, profile, "aws_access_key_id"))
		return (*out = creds_file_source(f->creds_path, 0, profile)) ? 0 : -ENOMEM;
	if ((v = creds_prof(f, profile, "credential_process"))) {
		char name[200];
		snprintf(name, sizeof(name), "profile %.60s (credential_process)", profile);
		struct credsrc *s = credsrc_new(CREDSRC_PROCESS, name);
		if (!s || creds_dup(&s->command, v)) {
			credsrc_free(s);
			return -ENOMEM;
		}
		*out = s;
		return 0;
	}
	if (awsini_get(f->config, profile, "aws_access_key_id"))
		return (*out = creds_file_source(f->config_path, 1, profile)) ? 0 : -ENOMEM;
	return 0;
}

/* The chain of creds.h. *out NULL with 0: nothing configured (IMDS not probed yet). */
static int creds_chain(const struct ferry_config *cfg, const struct creds_files *f,
		       struct credsrc **out, char *err, size_t errlen)
{
	int rc;
	if ((*out = creds_env_source()))
		return 0;
	if (creds_env("AWS_ACCESS_KEY_ID") || creds_env("AWS_SECRET_ACCESS_KEY")) {
		snprintf(err, errlen, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set "
			 "together");
		return -EINVAL;
	}
	if ((rc = creds_profile_source(cfg, f, f->profile, 0, out, err, errlen)) || *out)
		return rc;
	if ((rc = creds_container_source(out, err, errlen)) || *out)
		return rc;
	return 0;
}

/* ---- the current credentials -------------------------------------------------------- */

static time_t creds_lifetime(const struct creds *c)
{
	time_t l = c->cur.expiration - c->fetched;
	return l > 0 ? l : 0;
}

/* Seconds before expiry within which the credentials are not used if others can be had. */
static time_t creds_margin(const struct creds *c)
{
	time_t m = creds_lifetime(c) / 4;
	return m < CREDS_MARGIN_MAX ? m : CREDS_MARGIN_MAX;
}

/* When the renewal thread renews them. */
static time_t creds_renew_at(const struct creds *c)
{
	time_t ahead = creds_lifetime(c) / 2;
	if (ahead > CREDS_AHEAD_MAX)
		ahead = CREDS_AHEAD_MAX;
	return c->cur.expiration - ahead;
}

static void creds_file_sig(const struct credsrc *s, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	if (s->kind == CREDSRC_FILE && stat(s->path, st))
		memset(st, 0, sizeof(*st));
}

static int creds_file_changed(const struct stat *a, const struct stat *b)
{
	return a->st_ino != b->st_ino || a->st_dev != b->st_dev || a->st_size != b->st_size ||
	       a->st_mtim.tv_sec != b->st_mtim.tv_sec || a->st_mtim.tv_nsec != b->st_mtim.tv_nsec;
}

/* Fetch new credentials unless generation seen was already replaced. force: fetch even
 * within a failure's backoff (never used by requests). 0 when newer credentials are
 * there; -errno otherwise. */
static int creds_renew(struct creds *c, unsigned seen, int force, const char *why)
{
	struct creds_value v;
	struct stat sig;
	char err[512] = "";
	int rc;
	pthread_mutex_lock(&c->fetch_lock);
	pthread_mutex_lock(&c->lock);
	int done = c->gen != seen;
	int wait = !force && time(NULL) < c->next_try;
	pthread_mutex_unlock(&c->lock);
	if (done || wait) {
		pthread_mutex_unlock(&c->fetch_lock);
		return done ? 0 : -EAGAIN;
	}
	creds_file_sig(c->src, &sig);
	rc = credsrc_fetch(c->src, &v, err, sizeof(err));
	time_t now = time(NULL);
	if (rc == 0 && v.expiration && v.expiration <= now) {
		creds_value_clear(&v);
		snprintf(err, sizeof(err), "the new credentials have already expired (check the "
			 "clock)");
		rc = -EACCES;
	}
	pthread_mutex_lock(&c->lock);
	time_t left = c->cur.expiration ? c->cur.expiration - now : -1;
	unsigned failures = 0;
	if (rc == 0) {
		creds_value_clear(&c->cur);
		c->cur = v;
		c->gen++;
		c->fetched = now;
		c->failures = 0;
		c->next_try = 0;
		c->file_sig = sig;
	} else {
		failures = ++c->failures;
		time_t d = 1;
		for (unsigned i = 1; i < failures && d < CREDS_BACKOFF_MAX; i++)
			d *= 2;
		c->next_try = now + (d < CREDS_BACKOFF_MAX ? d : CREDS_BACKOFF_MAX);
	}
	time_t exp = c->cur.expiration;
	pthread_mutex_unlock(&c->lock);
	pthread_mutex_unlock(&c->fetch_lock);
	if (rc == 0) {
		stats_inc(credential_refreshes);
		char when[21] = "never";
		if (exp)
			util_format_iso8601(exp, when);
		log_info("credentials: renewed from %s (%s); they expire %s%s", c->source, why,
			 exp ? "at " : "", when);
	} else {
		stats_inc(credential_errors);
		if (left >= 0)
			log_warn("credentials: renewing from %s failed (%s, attempt %u): %s; the "
				 "current ones %s %lds",
				 c->source, why, failures, err, left > 0 ? "expire in" : "expired",
				 (long)(left > 0 ? left : -left));
		else
			log_warn("credentials: reading %s failed (%s, attempt %u): %s; keeping the "
				 "current ones", c->source, why, failures, err);
	}
	return rc;
}

int creds_get(struct creds *c, struct creds_value *out, unsigned *gen)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	time_t now = time(NULL);
	if (c->cur.expiration && now >= c->cur.expiration - creds_margin(c) &&
	    now >= c->next_try) {
		unsigned seen = c->gen;
		pthread_mutex_unlock(&c->lock);
		creds_renew(c, seen, 0, "about to expire");
		pthread_mutex_lock(&c->lock);
		now = time(NULL);
	}
	if (c->cur.expiration && now >= c->cur.expiration) {
		int say = now - c->expired_logged >= 60;
		if (say)
			c->expired_logged = now;
		pthread_mutex_unlock(&c->lock);
		if (say)
			log_err("credentials: those from %s have expired and cannot be renewed: S3 "
				"requests fail with EACCES until they can", c->source);
		return -EACCES;
	}
	int rc = creds_value_copy(out, &c->cur);
	*gen = c->gen;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int creds_rejected(struct creds *c, unsigned gen, unsigned min_age)
{
	if (c->src->kind == CREDSRC_FIXED)
		return -EACCES;
	pthread_mutex_lock(&c->lock);
	int young = c->gen == gen && time(NULL) - c->fetched < (time_t)min_age;
	pthread_mutex_unlock(&c->lock);
	if (young)
		return -EACCES;
	return creds_renew(c, gen, 0, "S3 refused the current ones");
}

void creds_reload(struct creds *c)
{
	pthread_mutex_lock(&c->lock);
	c->want = 1;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

const char *creds_source(const struct creds *c)
{
	return c->source;
}

void creds_sighup(int sig)
{
	(void)sig;
	atomic_fetch_add(&creds_hup_gen, 1);
}

static void *creds_thread(void *arg)
{
	struct creds *c = arg;
	int file = c->src->kind == CREDSRC_FILE;
	time_t poll_at = time(NULL) + CREDS_FILE_POLL;   /* next look at the file and SIGHUP */
	c->hup_seen = atomic_load(&creds_hup_gen);
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		time_t now = time(NULL), wake = poll_at;
		unsigned hup = atomic_load(&creds_hup_gen);
		if (hup != c->hup_seen) {
			c->hup_seen = hup;
			c->want = 1;
		}
		if (c->failures && c->next_try < wake)
			wake = c->next_try;
		else if (!c->failures && c->cur.expiration && creds_renew_at(c) < wake)
			wake = creds_renew_at(c);
		if (!c->want && now < wake) {
			struct timespec ts = { wake, 0 };
			pthread_cond_timedwait(&c->cond, &c->lock, &ts);
			continue;
		}
		int poll = now >= poll_at;
		if (poll)
			poll_at = now + CREDS_FILE_POLL;
		int want = c->want;
		c->want = 0;
		unsigned seen = c->gen;
		struct stat old = c->file_sig;
		int retry = c->failures != 0;
		int due = retry ? now >= c->next_try
			  : c->cur.expiration && now >= creds_renew_at(c);
		pthread_mutex_unlock(&c->lock);
		if (want || due) {
			creds_renew(c, seen, 1,
				    want  ? "reload asked" :
				    retry ? "retry" :
					    "scheduled");
		} else if (file && poll) {
			struct stat cur;
			creds_file_sig(c->src, &cur);
			if (creds_file_changed(&old, &cur))
				creds_renew(c, seen, 1, "the file changed");
		}
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

int creds_start(struct creds *c)
{
	if (c->src->kind == CREDSRC_FIXED || c->running)
		return 0;
	int rc = -pthread_create(&c->thread, NULL, creds_thread, c);
	if (rc == 0)
		c->running = 1;
	return rc;
}

void creds_free(struct creds *c)
{
	if (!c)
		return;
	if (c->running) {
		pthread_mutex_lock(&c->lock);
		c->stop = 1;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	creds_value_clear(&c->cur);
	credsrc_free(c->src);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->fetch_lock);
	free(c);
}

int creds_new(const struct ferry_config *cfg, struct creds **out, char *err, size_t errlen)
{
	struct creds_files f;
	struct credsrc *src = NULL;
	char e2[400] = "";
	int rc;
	*out = NULL;
	if ((rc = creds_files_load(cfg, &f, err, errlen)))
		return rc;
	if ((rc = creds_chain(cfg, &f, &src, err, errlen)))
		goto out;
	struct creds_value v = { 0 };
	if (src) {
		if ((rc = credsrc_fetch(src, &v, e2, sizeof(e2)))) {
			snprintf(err, errlen, "credentials from %s: %s", src->name, e2);
			goto out;
		}
	} else {
		const char *dis = getenv("AWS_EC2_METADATA_DISABLED");
		if (!dis || strcasecmp(dis, "true") != 0) {
			if (!(src = creds_imds_source(&f))) {
				rc = -ENOMEM;
				goto out;
			}
			rc = credsrc_fetch(src, &v, e2, sizeof(e2));
			if (rc == -ETIMEDOUT || rc == -ECONNREFUSED || rc == -EHOSTUNREACH ||
			    rc == -ENOENT || rc == -EIO) {
				log_debug("credentials: no instance metadata: %s", e2);
				credsrc_free(src);
				src = NULL;
			} else if (rc) {
				snprintf(err, errlen, "credentials from %s: %s", src->name, e2);
				goto out;
			}
		}
		if (!src && cfg->s3_access_key_id && cfg->s3_secret_access_key) {
			src = creds_fixed("config file", cfg->s3_access_key_id,
					  cfg->s3_secret_access_key, NULL);
			if (!src || (rc = credsrc_fetch(src, &v, e2, sizeof(e2)))) {
				rc = -ENOMEM;
				goto out;
			}
		}
		if (!src) {
			snprintf(err, errlen,
				 "no S3 credentials: set AWS_ACCESS_KEY_ID and "
				 "AWS_SECRET_ACCESS_KEY, a profile in %s or %s, web identity, "
				 "container "
				 "or instance credentials, or "
				 "s3_access_key_id/s3_secret_access_key in a "
				 "config file",
				 f.creds_path, f.config_path);
			rc = -ENOENT;
			goto out;
		}
	}
	struct creds *c = calloc(1, sizeof(*c));
	if (!c) {
		creds_value_clear(&v);
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&c->fetch_lock, NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(c->source, sizeof(c->source), "%s", src->name);
	creds_file_sig(src, &c->file_sig);
	c->src = src;
	src = NULL;
	c->cur = v;
	c->fetched = time(NULL);
	*out = c;
out:
	credsrc_free(src);
	creds_files_free(&f);
	return rc;
}
