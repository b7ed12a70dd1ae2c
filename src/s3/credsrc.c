/* credsrc.c - the credential sources of credsrc.h: how each one fetches a fresh set.
 *
 * Every answer from the network or from a process is hostile until parsed: bodies are
 * capped (CREDSRC_MAX_BODY), parsed strictly (json.h, xml.h), and an error message names
 * the source and the cause but never quotes the answer (it may hold a secret). */
#include "s3/credsrc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "s3/awsini.h"
#include "s3/json.h"
#include "s3/sigv4.h"
#include "s3/xml.h"

#define CREDSRC_MAX_BODY (64u << 10)
#define CREDSRC_MAX_TOKEN (16u << 10)
#define CREDSRC_IMDS_TTL "21600"

extern char **environ;

static int credsrc_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int credsrc_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

void creds_value_clear(struct creds_value *v)
{
	free(v->access_key_id);
	util_free_secret(v->secret_access_key);
	util_free_secret(v->session_token);
	memset(v, 0, sizeof(*v));
}

int creds_value_copy(struct creds_value *dst, const struct creds_value *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key_id = util_strdup(src->access_key_id ? src->access_key_id : "");
	dst->secret_access_key = util_strdup(src->secret_access_key ? src->secret_access_key : "");
	if (src->session_token)
		dst->session_token = util_strdup(src->session_token);
	dst->expiration = src->expiration;
	if (!dst->access_key_id || !dst->secret_access_key ||
	    (src->session_token && !dst->session_token)) {
		creds_value_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

struct credsrc *credsrc_new(enum credsrc_kind kind, const char *name)
{
	struct credsrc *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->kind = kind;
	s->timeout = 5;
	snprintf(s->name, sizeof(s->name), "%s", name);
	return s;
}

void credsrc_free(struct credsrc *s)
{
	if (!s)
		return;
	creds_value_clear(&s->fixed);
	free(s->path);
	free(s->profile);
	free(s->role_arn);
	free(s->session_name);
	free(s->external_id);
	free(s->duration);
	free(s->token_file);
	free(s->sts_url);
	free(s->region);
	credsrc_free(s->source);
	free(s->command);
	free(s->url);
	util_free_secret(s->auth_token);
	free(s->auth_token_file);
	free(s->endpoint);
	free(s);
}

/* ---- parsers ------------------------------------------------------------------------ */

/* Keys and tokens are printable ASCII without blanks: anything else is a malformed answer
 * (and could smuggle a line into an HTTP header). */
static int credsrc_printable(const char *s)
{
	if (!s || !*s)
		return 0;
	for (; *s; s++)
		if (*s <= ' ' || *s > '~')
			return 0;
	return 1;
}

int credsrc_parse_json(const char *text, size_t len, int process, struct creds_value *out,
		       char *err, size_t errlen)
{
	static const char *const names[] = { "AccessKeyId", "SecretAccessKey", "Token",
		"SessionToken", "Expiration", "Code", "Version" };
	char *v[ARRAY_SIZE(names)];
	struct timespec ts = { 0, 0 };
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = json_get_members(text, len, names, v, ARRAY_SIZE(names))))
		return rc == -ENOMEM ? rc : credsrc_fail(err, errlen, -EPROTO,
							 "the answer is not a JSON object");
	const char *token = process ? v[3] : v[2];
	rc = -EPROTO;
	if (!process && v[5] && strcmp(v[5], "Success") != 0) {
		credsrc_fail(err, errlen, -EACCES, "the answer's Code is not Success");
		rc = -EACCES;
		goto out;
	}
	if (process && (!v[6] || strcmp(v[6], "1") != 0)) {
		credsrc_fail(err, errlen, rc, "the answer's Version is not 1");
		goto out;
	}
	if (!credsrc_printable(v[0]) || !credsrc_printable(v[1])) {
		credsrc_fail(err, errlen, rc,
			     "the answer has no valid AccessKeyId/SecretAccessKey");
		goto out;
	}
	if (token && !credsrc_printable(token)) {
		credsrc_fail(err, errlen, rc, "the answer's session token is not valid");
		goto out;
	}
	if (!process && (!token || !v[4])) {
		credsrc_fail(err, errlen, rc, "the answer has no Token or no Expiration");
		goto out;
	}
	if (v[4] && (util_parse_iso8601(v[4], &ts) || ts.tv_sec <= 0)) {
		credsrc_fail(err, errlen, rc, "the answer's Expiration is not an ISO 8601 time");
		goto out;
	}
	out->access_key_id = v[0];
	out->secret_access_key = v[1];
	out->session_token = process ? v[3] : v[2];
	if (process)
		v[3] = NULL;
	else
		v[2] = NULL;
	v[0] = v[1] = NULL;
	out->expiration = ts.tv_sec;
	rc = 0;
out:
	json_free_values(v, ARRAY_SIZE(names));
	return rc;
}

int credsrc_parse_sts(const char *xml, size_t len, struct creds_value *out, char *err,
		      size_t errlen)
{
	struct s3xml_sts s;
	struct timespec ts;
	memset(out, 0, sizeof(*out));
	int rc = s3xml_parse_sts(xml, len, &s);
	if (rc == -EIO) {
		/* the code is printed only if it looks like one (letters and digits) */
		int ok = s.error.code[0] != '\0';
		for (const char *p = s.error.code; *p; p++)
			if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			      (*p >= '0' && *p <= '9') || *p == '.'))
				ok = 0;
		return credsrc_fail(err, errlen, -EACCES, "STS refused: %s",
				    ok ? s.error.code : "(unprintable error code)");
	}
	if (rc)
		return rc == -ENOMEM ? rc : credsrc_fail(err, errlen, -EPROTO,
							 "the STS answer is malformed");
	rc = -EPROTO;
	if (!credsrc_printable(s.access_key_id) || !credsrc_printable(s.secret_access_key) ||
	    !credsrc_printable(s.session_token))
		credsrc_fail(err, errlen, rc, "the STS answer's credentials are not valid");
	else if (util_parse_iso8601(s.expiration, &ts) || ts.tv_sec <= 0)
		credsrc_fail(err, errlen, rc,
			     "the STS answer's Expiration is not an ISO 8601 time");
	else
		rc = 0;
	if (rc == 0) {
		out->access_key_id = s.access_key_id;
		out->secret_access_key = s.secret_access_key;
		out->session_token = s.session_token;
		out->expiration = ts.tv_sec;
		s.access_key_id = s.secret_access_key = s.session_token = NULL;
	}
	s3xml_sts_free(&s);
	return rc;
}

int credsrc_split_command(const char *cmd, char ***argv)
{
	size_t n = strlen(cmd), words = 0;
	/* worst case: every other byte starts a word */
	size_t slots = n / 2 + 2;
	char **v = malloc(slots * sizeof(char *) + n + 1);
	if (!v)
		return -ENOMEM;
	char *o = (char *)(v + slots);
	const char *p = cmd;
	*argv = NULL;
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		v[words++] = o;
		while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
			if (*p == '\'') {
				const char *e = strchr(p + 1, '\'');
				if (!e)
					goto bad;
				memcpy(o, p + 1, (size_t)(e - p - 1));
				o += e - p - 1;
				p = e + 1;
			} else if (*p == '"') {
				for (p++; *p && *p != '"'; p++) {
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					*o++ = *p;
				}
				if (*p != '"')
					goto bad;
				p++;
			} else if (*p == '\\' && p[1]) {
				*o++ = p[1];
				p += 2;
			} else {
				*o++ = *p++;
			}
		}
		*o++ = '\0';
	}
	if (!words)
		goto bad;
	v[words] = NULL;
	*argv = v;
	return 0;
bad:
	free(v);
	return -EINVAL;
}

int credsrc_container_url(const char *relative, const char *full, char **url)
{
	*url = NULL;
	if (relative && *relative) {
		struct buf b = { 0 };
		if (buf_printf(&b, "http://169.254.170.2%s%s", relative[0] == '/' ? "" : "/",
			       relative))
			return -ENOMEM;
		*url = b.data;
		return 0;
	}
	if (!full || !*full)
		return -EINVAL;
	if (strncasecmp(full, "https://", 8) != 0) {
		static const char *const ok[] = { "127.", "localhost", "[::1]", "169.254.170.2",
			"169.254.170.23", "[fd00:ec2::23]" };
		if (strncasecmp(full, "http://", 7) != 0)
			return -EINVAL;
		const char *h = full + 7;
		size_t hl = strcspn(h, "/?#");
		const char *at = memchr(h, '@', hl);
		if (at)
			return -EINVAL;
		int good = 0;
		for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
			size_t l = strlen(ok[i]);
			if (hl >= l && strncasecmp(h, ok[i], l) == 0 &&
			    (ok[i][l - 1] == '.' || hl == l || h[l] == ':'))
				good = 1;
		}
		if (!good)
			return -EINVAL;
	}
	return (*url = util_strdup(full)) ? 0 : -ENOMEM;
}

/* ---- HTTP --------------------------------------------------------------------------- */

struct credsrc_body {
	struct buf *b;
	int over;
};

static size_t credsrc_on_body(char *data, size_t size, size_t n, void *arg)
{
	struct credsrc_body *cb = arg;
	size_t len = size * n;
	if (cb->b->len + len > CREDSRC_MAX_BODY) {
		cb->over = 1;
		return 0;
	}
	return buf_append(cb->b, data, len) ? 0 : len;
}

/* One HTTP request on a handle of its own. 0 with *status set (any status), or -errno
 * with the cause in err. */
static int credsrc_http(const char *what, const char *method, const char *url,
			struct curl_slist *hdrs, const char *body, long timeout, struct buf *resp,
			long *status, char *err, size_t errlen)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct credsrc_body cb = { resp, 0 };
	CURL *h = curl_easy_init();
	int rc = 0;
	*status = 0;
	if (!h)
		return -ENOMEM;
	int bad = 0;
	bad |= curl_easy_setopt(h, CURLOPT_URL, url);
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout);
	bad |= curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout * 2);
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, credsrc_on_body);
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, &cb);
	bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (strcmp(method, "GET") != 0) {
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
		if (strcmp(method, "POST") != 0)
			bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	}
	if (bad) {
		rc = -EINVAL;
		goto out;
	}
	CURLcode cc = curl_easy_perform(h);
	if (cc != CURLE_OK) {
		rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT
		     : cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED
		     : cc == CURLE_COULDNT_RESOLVE_HOST ? -EHOSTUNREACH
		     : cc == CURLE_WRITE_ERROR && cb.over ? -EPROTO
		     : cc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EIO;
		credsrc_fail(err, errlen, rc, "%s: %s", what,
			     cb.over ? "the answer is too large" : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
out:
	curl_easy_cleanup(h);
	return rc;
}

static int credsrc_add_hdr(struct curl_slist **l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int credsrc_add_hdr(struct curl_slist **l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *line = len < 0 ? NULL : malloc((size_t)len + 1);
	if (!line)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(line, (size_t)len + 1, fmt, ap);
	va_end(ap);
	struct curl_slist *n = curl_slist_append(*l, line);
	util_free_secret(line);
	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

/* Read a token file (a JWT, an authorization token): at most CREDSRC_MAX_TOKEN bytes,
 * trailing blanks dropped, printable ASCII only. */
static int credsrc_read_token(const char *path, char **out, char *err, size_t errlen)
{
	char *data = malloc(CREDSRC_MAX_TOKEN + 1);
	size_t len = 0;
	int rc = 0;
	*out = NULL;
	if (!data)
		return -ENOMEM;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		credsrc_fail(err, errlen, rc, "cannot read the token file %s: %s", path,
			     strerror(errno));
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, data + len, CREDSRC_MAX_TOKEN + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : 0;
			break;
		}
		len += (size_t)r;
		if (len > CREDSRC_MAX_TOKEN) {
			rc = -EFBIG;
			break;
		}
	}
	close(fd);
	while (!rc && len && strchr(" \t\r\n", data[len - 1]))
		len--;
	data[len] = '\0';
	if (!rc && (len == 0 || !credsrc_printable(data)))
		rc = -EINVAL;
	if (rc)
		credsrc_fail(err, errlen, rc, "the token file %s %s", path,
			     rc == -EFBIG ? "is too large" : rc == -EINVAL ? "holds no valid token"
			     : "cannot be read");
out:
	if (rc) {
		explicit_bzero(data, CREDSRC_MAX_TOKEN + 1);
		free(data);
	} else {
		*out = data;
	}
	return rc;
}

/* ---- STS ---------------------------------------------------------------------------- */

static int credsrc_form(struct buf *b, const char *name, const char *value)
{
	if (!value || !*value)
		return 0;
	if ((b->len && buf_puts(b, "&")) || buf_puts(b, name) || buf_puts(b, "="))
		return -ENOMEM;
	return sigv4_uri_encode(value, strlen(value), 0, b);
}

/* POST an STS request (form body) and parse its answer. signer: NULL for the unsigned
 * AssumeRoleWithWebIdentity. */
static int credsrc_sts(const struct credsrc *s, const struct buf *form,
		       const struct creds_value *signer, struct creds_value *out, char *err,
		       size_t errlen)
{
	static const char ctype[] = "application/x-www-form-urlencoded; charset=utf-8";
	struct curl_slist *hl = NULL;
	struct buf resp = { 0 };
	struct sigv4_result sig;
	char payload[65];
	long status;
	int rc;
	memset(&sig, 0, sizeof(sig));
	if ((rc = credsrc_add_hdr(&hl, "Content-Type: %s", ctype)) ||
	    (rc = credsrc_add_hdr(&hl, "Accept: application/xml")) ||
	    (rc = credsrc_add_hdr(&hl, "Expect:")))
		goto out;
	if (signer) {
		const char *u = s->sts_url;
		const char *auth = strstr(u, "://");
		auth = auth ? auth + 3 : u;
		size_t hlen = strcspn(auth, "/?#");
		char host[256];
		snprintf(host, sizeof(host), "%.*s", (int)(hlen < 255 ? hlen : 255), auth);
		const char *path = auth[hlen] == '/' ? auth + hlen : "/";
		struct sigv4_header sh[] = { { "content-type", ctype } };
		struct sigv4_request sr = { .method = "POST", .host = host, .path = path,
			.headers = sh, .nheaders = 1, .payload_hash = payload };
		struct sigv4_key key = { .access_key_id = signer->access_key_id,
					 .secret_access_key = signer->secret_access_key,
					 .session_token = signer->session_token,
					 .region = s->region,
					 .service = "sts" };
		if ((rc = util_sha256_hex(form->data, form->len, payload)) ||
		    (rc = sigv4_sign(&sr, &key, time(NULL), &sig)))
			goto out;
		if ((rc = credsrc_add_hdr(&hl, "x-amz-date: %s", sig.amz_date)) ||
		    (rc = credsrc_add_hdr(&hl, "x-amz-content-sha256: %s", payload)) ||
		    (signer->session_token && signer->session_token[0] &&
		     (rc = credsrc_add_hdr(&hl, "x-amz-security-token: %s",
					   signer->session_token))) ||
		    (rc = credsrc_add_hdr(&hl, "Authorization: %s", sig.authorization.data)))
			goto out;
	}
	if ((rc = credsrc_http("STS", "POST", s->sts_url, hl, form->data, s->timeout, &resp,
			       &status, err, errlen)))
		goto out;
	if (status != 200 && status != 400 && status != 403) {
		rc = credsrc_fail(err, errlen, status >= 500 ? -EIO : -EACCES,
				  "STS %s answered HTTP %ld", s->sts_url, status);
		goto out;
	}
	rc = credsrc_parse_sts(resp.data ? resp.data : "", resp.len, out, err, errlen);
	if (rc == 0 && status != 200) {
		creds_value_clear(out);
		rc = credsrc_fail(err, errlen, -EACCES, "STS %s answered HTTP %ld", s->sts_url,
				  status);
	}
out:
	if (resp.data)
		explicit_bzero(resp.data, resp.len);
	buf_free(&resp);
	sigv4_result_free(&sig);
	curl_slist_free_all(hl);
	return rc;
}

static int credsrc_session_form(const struct credsrc *s, const char *action, struct buf *form)
{
	char name[64];
	if (s->session_name && *s->session_name)
		snprintf(name, sizeof(name), "%s", s->session_name);
	else
		snprintf(name, sizeof(name), "ferryfs-%lld", (long long)time(NULL));
	if (credsrc_form(form, "Action", action) || credsrc_form(form, "Version", "2011-06-15") ||
	    credsrc_form(form, "RoleArn", s->role_arn) ||
	    credsrc_form(form, "RoleSessionName", name) ||
	    credsrc_form(form, "DurationSeconds", s->duration) ||
	    credsrc_form(form, "ExternalId", s->external_id))
		return -ENOMEM;
	return 0;
}

static int credsrc_fetch_role(const struct credsrc *s, struct creds_value *out, char *err,
			      size_t errlen)
{
	struct creds_value src = { 0 };
	struct buf form = { 0 };
	char e2[256] = "";
	int rc = credsrc_fetch(s->source, &src, e2, sizeof(e2));
	if (rc) {
		credsrc_fail(err, errlen, rc, "its source credentials: %s", e2);
		goto out;
	}
	if ((rc = credsrc_session_form(s, "AssumeRole", &form)))
		goto out;
	rc = credsrc_sts(s, &form, &src, out, err, errlen);
out:
	buf_free(&form);
	creds_value_clear(&src);
	return rc;
}

static int credsrc_fetch_webid(const struct credsrc *s, struct creds_value *out, char *err,
			       size_t errlen)
{
	struct buf form = { 0 };
	char *token = NULL;
	int rc = credsrc_read_token(s->token_file, &token, err, errlen);
	if (rc)
		return rc;
	if ((rc = credsrc_session_form(s, "AssumeRoleWithWebIdentity", &form)) ||
	    (rc = credsrc_form(&form, "WebIdentityToken", token)))
		goto out;
	rc = credsrc_sts(s, &form, NULL, out, err, errlen);
out:
	if (form.data)
		explicit_bzero(form.data, form.len);
	buf_free(&form);
	util_free_secret(token);
	return rc;
}

/* ---- a profile's keys --------------------------------------------------------------- */

static int credsrc_fetch_file(const struct credsrc *s, struct creds_value *out, char *err,
			      size_t errlen)
{
	struct awsini *f = NULL;
	unsigned line = 0;
	int rc = awsini_load(s->path, s->is_config, &f, &line);
	if (rc == -EINVAL)
		return credsrc_fail(err, errlen, rc, "%s: malformed at line %u", s->path, line);
	if (rc)
		return credsrc_fail(err, errlen, rc, "%s: %s", s->path, strerror(-rc));
	const char *id = awsini_get(f, s->profile, "aws_access_key_id");
	const char *secret = awsini_get(f, s->profile, "aws_secret_access_key");
	const char *token = awsini_get(f, s->profile, "aws_session_token");
	if (!id || !*id || !secret || !*secret) {
		rc = credsrc_fail(err, errlen, -ENOENT, "%s: profile %s has no "
				  "aws_access_key_id/aws_secret_access_key", s->path, s->profile);
	} else {
		struct creds_value v = { (char *)id, (char *)secret,
			(char *)(token && *token ? token : NULL), 0 };
		rc = creds_value_copy(out, &v);
	}
	awsini_free(f);
	return rc;
}

/* ---- credential_process ------------------------------------------------------------- */

static int credsrc_fetch_process(const struct credsrc *s, struct creds_value *out, char *err,
				 size_t errlen)
{
	posix_spawn_file_actions_t fa;
	char **argv = NULL;
	int pfd[2] = { -1, -1 }, rc, status = 0;
	struct buf b = { 0 };
	pid_t pid = -1;
	if ((rc = credsrc_split_command(s->command, &argv)))
		return credsrc_fail(err, errlen, rc, "credential_process: %s",
				    rc == -EINVAL ? "not a valid command line" : strerror(-rc));
	if (pipe2(pfd, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	rc = -posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	pfd[1] = -1;
	if (rc) {
		credsrc_fail(err, errlen, rc, "credential_process: cannot run %s: %s", argv[0],
			     strerror(-rc));
		pid = -1;
		goto out;
	}
	uint64_t deadline = util_now_ns() + (uint64_t)s->timeout * 12 * 1000000000ull;
	for (;;) {
		char chunk[4096];
		struct pollfd p = { pfd[0], POLLIN, 0 };
		uint64_t now = util_now_ns();
		if (now >= deadline) {
			rc = credsrc_fail(err, errlen, -ETIMEDOUT,
					  "credential_process %s: no answer "
					  "in time",
					  argv[0]);
			kill(pid, SIGKILL);
			goto out;
		}
		int pr = poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t r = read(pfd[0], chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (b.len + (size_t)r > CREDSRC_MAX_BODY) {
			rc = credsrc_fail(err, errlen, -EPROTO, "credential_process %s: the answer "
					  "is too large", argv[0]);
			kill(pid, SIGKILL);
			explicit_bzero(chunk, sizeof(chunk));
			goto out;
		}
		rc = buf_append(&b, chunk, (size_t)r);
		explicit_bzero(chunk, sizeof(chunk));
		if (rc)
			goto out;
	}
out:
	if (pid > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			rc = credsrc_fail(err, errlen, -EACCES,
					  "credential_process %s: exited with "
					  "status %d",
					  argv[0],
					  WIFEXITED(status) ? WEXITSTATUS(status) :
							      128 + WTERMSIG(status));
		if (!rc) {
			char e2[200] = "";
			rc = credsrc_parse_json(b.data ? b.data : "", b.len, 1, out, e2,
						sizeof(e2));
			if (rc)
				credsrc_fail(err, errlen, rc, "credential_process %s: %s", argv[0],
					     e2);
		}
	}
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (b.data)
		explicit_bzero(b.data, b.len);
	buf_free(&b);
	free(argv);
	return rc;
}

/* ---- container and instance metadata ------------------------------------------------ */

static int credsrc_fetch_container(const struct credsrc *s, struct creds_value *out,
				   char *err, size_t errlen)
{
	struct curl_slist *hl = NULL;
	struct buf resp = { 0 };
	char *token = NULL;
	long status;
	int rc = 0;
	if (s->auth_token_file && *s->auth_token_file)
		rc = credsrc_read_token(s->auth_token_file, &token, err, errlen);
	else if (s->auth_token && *s->auth_token && !credsrc_printable(s->auth_token))
		rc = credsrc_fail(err, errlen, -EINVAL, "AWS_CONTAINER_AUTHORIZATION_TOKEN is not "
				  "a valid token");
	if (rc)
		return rc;
	const char *tok = token ? token : s->auth_token;
	if ((tok && *tok && (rc = credsrc_add_hdr(&hl, "Authorization: %s", tok))) ||
	    (rc = credsrc_add_hdr(&hl, "Accept: application/json")))
		goto out;
	if ((rc = credsrc_http("container credentials", "GET", s->url, hl, NULL, s->timeout, &resp,
			       &status, err, errlen)))
		goto out;
	if (status != 200) {
		rc = credsrc_fail(err, errlen, status >= 500 ? -EIO : -EACCES,
				  "container credentials %s answered HTTP %ld", s->url, status);
		goto out;
	}
	char e2[200] = "";
	if ((rc = credsrc_parse_json(resp.data ? resp.data : "", resp.len, 0, out, e2, sizeof(e2))))
		credsrc_fail(err, errlen, rc, "container credentials %s: %s", s->url, e2);
out:
	if (resp.data)
		explicit_bzero(resp.data, resp.len);
	buf_free(&resp);
	curl_slist_free_all(hl);
	util_free_secret(token);
	return rc;
}

static int credsrc_fetch_imds(const struct credsrc *s, struct creds_value *out, char *err,
			      size_t errlen)
{
	struct curl_slist *hl = NULL;
	struct buf url = { 0 }, resp = { 0 };
	char *token = NULL, role[256];
	long status;
	int rc;
	/* 1. a session token (IMDSv2) */
	if ((rc = credsrc_add_hdr(&hl, "X-aws-ec2-metadata-token-ttl-seconds: %s",
				  CREDSRC_IMDS_TTL)) ||
	    (rc = buf_printf(&url, "%s/latest/api/token", s->endpoint)))
		goto out;
	if ((rc = credsrc_http("instance metadata", "PUT", url.data, hl, NULL, s->timeout, &resp,
			       &status, err, errlen)))
		goto out;
	if (status != 200 || !resp.data || !credsrc_printable(resp.data) || resp.len > 1024) {
		rc = credsrc_fail(err, errlen, status == 200 ? -EPROTO : -EACCES,
				  "instance metadata "
				  "%s: %s (HTTP %ld)",
				  s->endpoint,
				  status == 200 ? "malformed session token" :
						  "no IMDSv2 session token",
				  status);
		goto out;
	}
	token = resp.data;
	resp.data = NULL;
	resp.len = resp.cap = 0;
	curl_slist_free_all(hl);
	hl = NULL;
	/* 2. the role's name */
	buf_reset(&url);
	if ((rc = credsrc_add_hdr(&hl, "X-aws-ec2-metadata-token: %s", token)) ||
	    (rc = buf_printf(&url, "%s/latest/meta-data/iam/security-credentials/", s->endpoint)))
		goto out;
	if ((rc = credsrc_http("instance metadata", "GET", url.data, hl, NULL, s->timeout, &resp,
			       &status, err, errlen)))
		goto out;
	if (status != 200) {
		rc = credsrc_fail(err, errlen, status == 404 ? -ENOENT : -EACCES,
				  "instance metadata "
				  "%s: no instance profile role (HTTP %ld)",
				  s->endpoint, status);
		goto out;
	}
	size_t rl = resp.data ? strcspn(resp.data, "\r\n") : 0;
	if (rl == 0 || rl >= sizeof(role)) {
		rc = credsrc_fail(err, errlen, -EPROTO, "instance metadata %s: malformed role name",
				  s->endpoint);
		goto out;
	}
	memcpy(role, resp.data, rl);
	role[rl] = '\0';
	for (size_t i = 0; i < rl; i++)
		if (!((role[i] >= 'A' && role[i] <= 'Z') || (role[i] >= 'a' && role[i] <= 'z') ||
		      (role[i] >= '0' && role[i] <= '9') || strchr("+=,.@_-", role[i]))) {
			rc = credsrc_fail(err, errlen, -EPROTO, "instance metadata %s: malformed "
					  "role name", s->endpoint);
			goto out;
		}
	/* 3. its credentials */
	buf_reset(&resp);
	if (buf_puts(&url, role)) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = credsrc_http("instance metadata", "GET", url.data, hl, NULL, s->timeout, &resp,
			       &status, err, errlen)))
		goto out;
	if (status != 200) {
		rc = credsrc_fail(err, errlen, status >= 500 ? -EIO : -EACCES, "instance metadata "
				  "%s: role %s: HTTP %ld", s->endpoint, role, status);
		goto out;
	}
	char e2[200] = "";
	if ((rc = credsrc_parse_json(resp.data ? resp.data : "", resp.len, 0, out, e2, sizeof(e2))))
		credsrc_fail(err, errlen, rc, "instance metadata %s: role %s: %s", s->endpoint,
			     role, e2);
out:
	if (rc > 0)
		rc = -ENOMEM;
	if (resp.data)
		explicit_bzero(resp.data, resp.len);
	buf_free(&resp);
	buf_free(&url);
	curl_slist_free_all(hl);
	util_free_secret(token);
	return rc;
}

int credsrc_fetch(const struct credsrc *s, struct creds_value *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	switch (s->kind) {
	case CREDSRC_FIXED:
		return creds_value_copy(out, &s->fixed);
	case CREDSRC_FILE:
		return credsrc_fetch_file(s, out, err, errlen);
	case CREDSRC_ROLE:
		return credsrc_fetch_role(s, out, err, errlen);
	case CREDSRC_WEBID:
		return credsrc_fetch_webid(s, out, err, errlen);
	case CREDSRC_PROCESS:
		return credsrc_fetch_process(s, out, err, errlen);
	case CREDSRC_CONTAINER:
		return credsrc_fetch_container(s, out, err, errlen);
	case CREDSRC_IMDS:
		return credsrc_fetch_imds(s, out, err, errlen);
	}
	return -EINVAL;
}
