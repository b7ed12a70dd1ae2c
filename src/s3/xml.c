/* xml.c - the XML documents of the S3 API, parsed with expat and built by hand (see xml.h).
 *
 * Every document comes from the network, so every document is hostile until parsed:
 *  - a DOCTYPE is refused outright (S3 never sends one), so no entity is ever declared,
 *    expanded or fetched; expat's own billion-laughs guard (2.4+) is tightened as a second
 *    line, and external entities and parameter entities are switched off as a third;
 *  - element nesting is capped at S3XML_MAX_DEPTH, the text of one element at
 *    S3XML_MAX_TEXT bytes, and the entries of one document at S3XML_MAX_ITEMS;
 *  - numbers are parsed strictly (digits only, no overflow), booleans are "true"/"false".
 * Any breach gives -EPROTO and the parse stops; partial results are freed. Element names are
 * compared by local name, so any namespace (AWS's, s3rver's, none) is accepted.
 *
 * This module must never do I/O, log document contents (keys are user data), or keep
 * state between calls. */
#include "s3/xml.h"

#include <errno.h>
/* Debian's libexpat is built with DTD support (it exports the billion-laughs setters);
 * the header declares them only when XML_DTD is defined. */
#ifndef XML_DTD
#define XML_DTD
#endif
#include <expat.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define S3XML_MAX_DEPTH 16
#define S3XML_MAX_TEXT (64 * 1024)
#define S3XML_MAX_ITEMS 100000
#define S3XML_NAME_MAX 48
#define NS_SEP '\x01'

struct px;
typedef void (*px_start_fn)(struct px *x);
typedef void (*px_end_fn)(struct px *x, const char *text, size_t len);

/* The parse state shared by every document kind. */
struct px {
	XML_Parser p;
	int depth;                               /* open elements */
	char names[S3XML_MAX_DEPTH][S3XML_NAME_MAX]; /* their local names ("" if too long) */
	struct buf text;                         /* text of the innermost open element */
	int err;                                 /* first error, 0 while all is well */
	const char *const *roots;                /* accepted root elements (NULL-terminated) */
	int root;                                /* index in roots of the one seen, or -1 */
	px_start_fn on_start;                    /* after an element is pushed (may be NULL) */
	px_end_fn on_end;                        /* before an element is popped */
	void *ctx;                               /* the document kind's own state */
};

static void px_fail(struct px *x, int err)
{
	if (!x->err)
		x->err = err;
	XML_StopParser(x->p, XML_FALSE);
}

/* Is the open-element path exactly a[/b[/c]] (b and c may be NULL)? */
static int px_at(const struct px *x, const char *a, const char *b, const char *c)
{
	const char *path[3] = { a, b, c };
	int n = c ? 3 : b ? 2 : 1;
	if (x->depth != n)
		return 0;
	for (int i = 0; i < n; i++)
		if (strcmp(x->names[i], path[i]) != 0)
			return 0;
	return 1;
}

static void XMLCALL px_start(void *ud, const XML_Char *name, const XML_Char **attrs)
{
	struct px *x = ud;
	(void)attrs;
	if (x->err)
		return;
	if (x->depth >= S3XML_MAX_DEPTH) {
		px_fail(x, -EPROTO);
		return;
	}
	const char *local = strrchr(name, NS_SEP);
	local = local ? local + 1 : name;
	size_t n = strlen(local);
	char *slot = x->names[x->depth];
	if (n < S3XML_NAME_MAX)
		memcpy(slot, local, n + 1);
	else
		slot[0] = '\0';
	if (x->depth == 0) {
		x->root = -1;
		for (int i = 0; x->roots[i]; i++)
			if (strcmp(slot, x->roots[i]) == 0)
				x->root = i;
		if (x->root < 0) {
			px_fail(x, -EPROTO);
			return;
		}
	}
	x->depth++;
	buf_reset(&x->text);
	if (x->on_start)
		x->on_start(x);
}

static void XMLCALL px_end(void *ud, const XML_Char *name)
{
	struct px *x = ud;
	(void)name;
	if (x->err)
		return;
	x->on_end(x, x->text.data ? x->text.data : "", x->text.len);
	x->depth--;
	buf_reset(&x->text);
}

static void XMLCALL px_chars(void *ud, const XML_Char *s, int len)
{
	struct px *x = ud;
	if (x->err || len <= 0)
		return;
	if (x->text.len + (size_t)len > S3XML_MAX_TEXT) {
		px_fail(x, -EPROTO);
		return;
	}
	if (buf_append(&x->text, s, (size_t)len))
		px_fail(x, -ENOMEM);
}

static void XMLCALL px_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	(void)name, (void)sysid, (void)pubid, (void)has_internal_subset;
	px_fail(ud, -EPROTO);
}

static void XMLCALL px_entity(void *ud, const XML_Char *name, int is_param, const XML_Char *value,
			      int value_length, const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	(void)name, (void)is_param, (void)value, (void)value_length, (void)base, (void)sysid;
	(void)pubid, (void)notation;
	px_fail(ud, -EPROTO);
}

static int XMLCALL px_extref(XML_Parser p, const XML_Char *context, const XML_Char *base,
			     const XML_Char *sysid, const XML_Char *pubid)
{
	(void)p, (void)context, (void)base, (void)sysid, (void)pubid;
	return XML_STATUS_ERROR;
}

/* Parse xml with x set up by the caller (roots, on_start, on_end, ctx). 0 / -EPROTO /
 * -ENOMEM. S3 may send blanks ahead of the document to keep a slow CompleteMultipartUpload
 * or CopyObject connection alive: they are skipped. */
static int px_run(struct px *x, const char *xml, size_t len)
{
	int rc = 0;
	if (!xml)
		return -EPROTO;
	while (len && (*xml == ' ' || *xml == '\t' || *xml == '\r' || *xml == '\n')) {
		xml++;
		len--;
	}
	if (len == 0 || len > INT_MAX)
		return -EPROTO;
	x->root = -1;
	x->p = XML_ParserCreateNS(NULL, NS_SEP);
	if (!x->p)
		return -ENOMEM;
	XML_SetUserData(x->p, x);
	XML_SetElementHandler(x->p, px_start, px_end);
	XML_SetCharacterDataHandler(x->p, px_chars);
	XML_SetStartDoctypeDeclHandler(x->p, px_doctype);
	XML_SetEntityDeclHandler(x->p, px_entity);
	XML_SetExternalEntityRefHandler(x->p, px_extref);
	XML_SetParamEntityParsing(x->p, XML_PARAM_ENTITY_PARSING_NEVER);
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 4)
	/* Second line behind the DOCTYPE refusal: tighter than expat's defaults. */
	XML_SetBillionLaughsAttackProtectionMaximumAmplification(x->p, 10.0f);
	XML_SetBillionLaughsAttackProtectionActivationThreshold(x->p, 64 * 1024);
#endif
	if (XML_Parse(x->p, xml, (int)len, 1) != XML_STATUS_OK)
		rc = x->err ? x->err : -EPROTO;
	else if (x->err)
		rc = x->err;
	else if (x->root < 0)
		rc = -EPROTO;
	XML_ParserFree(x->p);
	x->p = NULL;
	buf_free(&x->text);
	return rc;
}

/* ---- small value parsers ---------------------------------------------------------- */

static void trim(const char **s, size_t *n)
{
	while (*n && strchr(" \t\r\n", (*s)[0])) {
		(*s)++;
		(*n)--;
	}
	while (*n && strchr(" \t\r\n", (*s)[*n - 1]))
		(*n)--;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	trim(&s, &n);
	if (n == 0)
		return -EPROTO;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EPROTO;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -EPROTO;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_bool(const char *s, size_t n, int *out)
{
	trim(&s, &n);
	if (n == 4 && strncmp(s, "true", 4) == 0)
		*out = 1;
	else if (n == 5 && strncmp(s, "false", 5) == 0)
		*out = 0;
	else
		return -EPROTO;
	return 0;
}

static int parse_time(const char *s, size_t n, struct timespec *out)
{
	char tmp[64];
	trim(&s, &n);
	if (n == 0 || n >= sizeof(tmp))
		return -EPROTO;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return util_parse_iso8601(tmp, out) ? -EPROTO : 0;
}

/* An ETag without its quotes, into out[80]. Too long: -EPROTO (a truncated ETag would
 * make a wrong If-Match). */
static int parse_etag(const char *s, size_t n, char out[80])
{
	trim(&s, &n);
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
		s++;
		n -= 2;
	}
	if (n >= 80 || memchr(s, '\0', n))
		return -EPROTO;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static void copy_trunc(char *dst, size_t dstsz, const char *s, size_t n)
{
	if (n >= dstsz)
		n = dstsz - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* Decode S3's encoding-type=url in place: %XX is a byte and '+' is a space (S3 encodes a
 * space as '+' and a literal '+' as %2B, as botocore's unquote_plus expects). -EINVAL for a
 * bad escape or a decoded NUL byte. */
static int url_decode(char *s)
{
	char *o = s;
	for (const char *p = s; *p; p++) {
		if (*p == '+') {
			*o++ = ' ';
		} else if (*p == '%') {
			int h = util_hexval((unsigned char)p[1]),
			    l = h < 0 ? -1 : util_hexval((unsigned char)p[2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return -EINVAL;
			*o++ = (char)(h << 4 | l);
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return 0;
}

/* ---- <Error> -------------------------------------------------------------------------- */

/* Fills the fields of an <Error> root document; used by every parser that can meet one. */
static void error_end(struct px *x, struct s3xml_error *e, const char *t, size_t n)
{
	if (!e || x->depth != 2)
		return;
	if (strcmp(x->names[1], "Code") == 0)
		copy_trunc(e->code, sizeof(e->code), t, n);
	else if (strcmp(x->names[1], "Message") == 0)
		copy_trunc(e->message, sizeof(e->message), t, n);
	else if (strcmp(x->names[1], "RequestId") == 0)
		copy_trunc(e->request_id, sizeof(e->request_id), t, n);
}

static void err_only_end(struct px *x, const char *t, size_t n)
{
	error_end(x, x->ctx, t, n);
}

int s3xml_parse_error(const char *xml, size_t len, struct s3xml_error *out)
{
	static const char *const roots[] = { "Error", NULL };
	struct s3xml_error tmp;
	memset(&tmp, 0, sizeof(tmp));
	struct px x = { .roots = roots, .on_end = err_only_end, .ctx = &tmp };
	int rc = px_run(&x, xml, len);
	if (rc == 0 && tmp.code[0] == '\0')
		rc = -EPROTO;         /* an <Error> without a Code tells nothing */
	if (out) {
		if (rc == 0)
			*out = tmp;
		else
			memset(out, 0, sizeof(*out));
	}
	return rc == -ENOMEM ? -ENOMEM : rc ? -EPROTO : 0;
}

/* ---- ListObjectsV2 -------------------------------------------------------------------- */

struct list_ctx {
	struct s3xml_list *l;
	size_t cap_obj, cap_pfx;
	struct s3xml_object cur;
	int have_key, have_size, have_etag, have_time;
	int have_pfx, have_truncated, have_token;
	char *cur_prefix;
	size_t dropped;
};

static void list_start(struct px *x)
{
	struct list_ctx *c = x->ctx;
	if (px_at(x, "ListBucketResult", "Contents", NULL)) {
		memset(&c->cur, 0, sizeof(c->cur));
		c->have_key = c->have_size = c->have_etag = c->have_time = 0;
	} else if (px_at(x, "ListBucketResult", "CommonPrefixes", NULL)) {
		c->have_pfx = 0;
	}
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n >= S3XML_MAX_ITEMS)
		return -EPROTO;
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *p = realloc(*arr, ncap * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static void list_end(struct px *x, const char *t, size_t n)
{
	struct list_ctx *c = x->ctx;
	struct s3xml_list *l = c->l;
	int rc = 0;
	const char *R = "ListBucketResult";

	if (x->depth == 3 && strcmp(x->names[1], "Contents") == 0) {
		const char *f = x->names[2];
		if (strcmp(f, "Key") == 0) {
			if (c->have_key++)
				rc = -EPROTO;
			else if (!(c->cur.key = util_strndup(t, n)))
				rc = -ENOMEM;
		} else if (strcmp(f, "Size") == 0) {
			rc = c->have_size++ ? -EPROTO : parse_u64(t, n, &c->cur.size);
		} else if (strcmp(f, "ETag") == 0) {
			rc = c->have_etag++ ? -EPROTO : parse_etag(t, n, c->cur.etag);
		} else if (strcmp(f, "LastModified") == 0) {
			rc = c->have_time++ ? -EPROTO : parse_time(t, n, &c->cur.last_modified);
		} else if (strcmp(f, "StorageClass") == 0) {
			if (n >= sizeof(c->cur.storage_class))
				rc = -EPROTO;
			else {
				memset(c->cur.storage_class, 0, sizeof(c->cur.storage_class));
				memcpy(c->cur.storage_class, t, n);
			}
		}
	} else if (px_at(x, R, "Contents", NULL)) {
		if (!c->have_key || !c->have_size)
			rc = -EPROTO;
		else if (!(rc = grow((void **)&l->objects, &c->cap_obj, l->nobjects,
				     sizeof(*l->objects)))) {
			l->objects[l->nobjects++] = c->cur;
			memset(&c->cur, 0, sizeof(c->cur));
		}
	} else if (px_at(x, R, "CommonPrefixes", "Prefix")) {
		if (c->have_pfx++)
			rc = -EPROTO;
		else if (!(c->cur_prefix = util_strndup(t, n)))
			rc = -ENOMEM;
	} else if (px_at(x, R, "CommonPrefixes", NULL)) {
		if (!c->have_pfx)
			rc = -EPROTO;
		else if (!(rc = grow((void **)&l->prefixes, &c->cap_pfx, l->nprefixes,
				     sizeof(*l->prefixes)))) {
			l->prefixes[l->nprefixes++] = c->cur_prefix;
			c->cur_prefix = NULL;
		}
	} else if (px_at(x, R, "IsTruncated", NULL)) {
		rc = c->have_truncated++ ? -EPROTO : parse_bool(t, n, &l->is_truncated);
	} else if (px_at(x, R, "NextContinuationToken", NULL)) {
		if (c->have_token++)
			rc = -EPROTO;
		else if (!(l->next_token = util_strndup(t, n)))
			rc = -ENOMEM;
	} else if (px_at(x, R, "EncodingType", NULL)) {
		const char *s = t;
		size_t m = n;
		trim(&s, &m);
		if (m == 3 && strncasecmp(s, "url", 3) == 0)
			l->url_encoded = 1;
		else if (m)
			rc = -EPROTO;         /* keys in an encoding we can't read */
	}
	if (rc)
		px_fail(x, rc);
}

/* Decode keys and prefixes after the whole page is read (EncodingType may come after the
 * entries); drop what can't be a key. */
static void list_decode(struct list_ctx *c)
{
	struct s3xml_list *l = c->l;
	size_t j = 0;
	for (size_t i = 0; i < l->nobjects; i++) {
		if ((l->url_encoded && url_decode(l->objects[i].key)) ||
		    strlen(l->objects[i].key) == 0) {
			free(l->objects[i].key);
			c->dropped++;
			continue;
		}
		l->objects[j++] = l->objects[i];
	}
	l->nobjects = j;
	j = 0;
	for (size_t i = 0; i < l->nprefixes; i++) {
		if ((l->url_encoded && url_decode(l->prefixes[i])) || strlen(l->prefixes[i]) == 0) {
			free(l->prefixes[i]);
			c->dropped++;
			continue;
		}
		l->prefixes[j++] = l->prefixes[i];
	}
	l->nprefixes = j;
}

void s3xml_list_free(struct s3xml_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nobjects; i++)
		free(l->objects[i].key);
	for (size_t i = 0; i < l->nprefixes; i++)
		free(l->prefixes[i]);
	free(l->objects);
	free(l->prefixes);
	free(l->next_token);
	memset(l, 0, sizeof(*l));
}

int s3xml_parse_list(const char *xml, size_t len, struct s3xml_list *out, size_t *dropped)
{
	static const char *const roots[] = { "ListBucketResult", NULL };
	memset(out, 0, sizeof(*out));
	struct list_ctx c = { .l = out };
	struct px x = { .roots = roots, .on_start = list_start, .on_end = list_end, .ctx = &c };
	int rc = px_run(&x, xml, len);
	free(c.cur.key);
	free(c.cur_prefix);
	if (!rc && !c.have_truncated)
		out->is_truncated = 0;
	/* A truncated page without a token can't be continued: refuse it rather than loop
	 * or stop early and show a partial directory. */
	if (!rc && out->is_truncated && (!out->next_token || !out->next_token[0]))
		rc = -EPROTO;
	if (!rc)
		list_decode(&c);
	if (rc) {
		s3xml_list_free(out);
		return rc;
	}
	if (dropped)
		*dropped = c.dropped;
	return 0;
}

/* ---- InitiateMultipartUpload ------------------------------------------------------------ */

struct init_ctx {
	char *upload_id;
	int seen;
};

static void init_end(struct px *x, const char *t, size_t n)
{
	struct init_ctx *c = x->ctx;
	if (!px_at(x, "InitiateMultipartUploadResult", "UploadId", NULL))
		return;
	trim(&t, &n);
	if (c->seen++ || n == 0)
		px_fail(x, -EPROTO);
	else if (!(c->upload_id = util_strndup(t, n)))
		px_fail(x, -ENOMEM);
}

int s3xml_parse_initiate(const char *xml, size_t len, char **upload_id)
{
	static const char *const roots[] = { "InitiateMultipartUploadResult", NULL };
	struct init_ctx c = { 0 };
	struct px x = { .roots = roots, .on_end = init_end, .ctx = &c };
	int rc = px_run(&x, xml, len);
	if (!rc && !c.upload_id)
		rc = -EPROTO;
	if (rc) {
		free(c.upload_id);
		c.upload_id = NULL;
	}
	*upload_id = c.upload_id;
	return rc;
}

/* ---- CompleteMultipartUpload and CopyObject (either may be an <Error> with 200) ------- */

struct result_ctx {
	char etag[80];
	struct timespec last_modified;
	int have_etag, have_time;
	struct s3xml_error err;
};

static void result_end(struct px *x, const char *t, size_t n)
{
	struct result_ctx *c = x->ctx;
	int rc = 0;
	if (strcmp(x->names[0], "Error") == 0) {
		error_end(x, &c->err, t, n);
		return;
	}
	if (x->depth != 2)
		return;
	if (strcmp(x->names[1], "ETag") == 0)
		rc = c->have_etag++ ? -EPROTO : parse_etag(t, n, c->etag);
	else if (strcmp(x->names[1], "LastModified") == 0)
		rc = c->have_time++ ? -EPROTO : parse_time(t, n, &c->last_modified);
	if (rc)
		px_fail(x, rc);
}

/* roots[0] (and roots[1] if any) are the success documents; the last is "Error". */
static int parse_result(const char *const *roots, const char *xml, size_t len,
			struct result_ctx *c, struct s3xml_error *err)
{
	struct px x = { .roots = roots, .on_end = result_end, .ctx = c };
	memset(c, 0, sizeof(*c));
	if (err)
		memset(err, 0, sizeof(*err));
	int rc = px_run(&x, xml, len);
	if (rc)
		return rc;
	if (strcmp(roots[x.root], "Error") == 0) {
		if (err)
			*err = c->err;
		return -EIO;
	}
	return c->have_etag ? 0 : -EPROTO;
}

int s3xml_parse_complete(const char *xml, size_t len, char etag[80], struct s3xml_error *err)
{
	static const char *const roots[] = { "CompleteMultipartUploadResult", "Error", NULL };
	struct result_ctx c;
	int rc = parse_result(roots, xml, len, &c, err);
	if (!rc && etag)
		memcpy(etag, c.etag, 80);
	return rc;
}

int s3xml_parse_copy(const char *xml, size_t len, char etag[80], struct timespec *last_modified,
		     struct s3xml_error *err)
{
	static const char *const roots[] = { "CopyObjectResult", "CopyPartResult", "Error", NULL };
	struct result_ctx c;
	int rc = parse_result(roots, xml, len, &c, err);
	if (!rc && etag)
		memcpy(etag, c.etag, 80);
	if (!rc && last_modified)
		*last_modified = c.last_modified;
	return rc;
}

/* ---- DeleteObjects ---------------------------------------------------------------------- */

struct del_ctx {
	void (*fn)(void *arg, const char *key, const char *code);
	void *arg;
	char *key, *code;
	int count;
};

static void del_start(struct px *x)
{
	struct del_ctx *c = x->ctx;
	if (px_at(x, "DeleteResult", "Error", NULL)) {
		free(c->key);
		free(c->code);
		c->key = c->code = NULL;
	}
}

static void del_end(struct px *x, const char *t, size_t n)
{
	struct del_ctx *c = x->ctx;
	if (strcmp(x->names[0], "Error") == 0)
		return;       /* the whole request failed: s3xml_parse_delete says -EIO */
	if (px_at(x, "DeleteResult", "Error", "Key") || px_at(x, "DeleteResult", "Error", "Code")) {
		char **slot = strcmp(x->names[2], "Key") == 0 ? &c->key : &c->code;
		if (*slot) {
			px_fail(x, -EPROTO);
			return;
		}
		if (!(*slot = util_strndup(t, n)))
			px_fail(x, -ENOMEM);
	} else if (px_at(x, "DeleteResult", "Error", NULL)) {
		if (!c->key || c->count >= S3XML_MAX_ITEMS) {
			px_fail(x, -EPROTO);
			return;
		}
		if (c->fn)
			c->fn(c->arg, c->key, c->code ? c->code : "");
		c->count++;
		free(c->key);
		free(c->code);
		c->key = c->code = NULL;
	}
}

int s3xml_parse_delete(const char *xml, size_t len,
		       void (*fn)(void *arg, const char *key, const char *code), void *arg)
{
	static const char *const roots[] = { "DeleteResult", "Error", NULL };
	struct del_ctx c = { .fn = fn, .arg = arg };
	struct px x = { .roots = roots, .on_start = del_start, .on_end = del_end, .ctx = &c };
	int rc = px_run(&x, xml, len);
	free(c.key);
	free(c.code);
	if (rc)
		return rc;
	if (strcmp(roots[x.root], "Error") == 0)
		return -EIO;
	return c.count;
}

/* ---- builders --------------------------------------------------------------------------- */

/* Length of the UTF-8 sequence at s (at most n bytes) if it is valid and a character XML 1.0
 * allows, else 0. */
static size_t xml_char_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	uint32_t cp;
	size_t len;
	if (c < 0x80) {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
			return 0;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;                       /* overlong or out of range */
	if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;                       /* surrogates and non-characters XML forbids */
	return len;
}

/* Append s XML-escaped. Characters that XML text would alter (CR, TAB, LF) are written as
 * character references so the server reads the exact bytes. -EINVAL for what XML 1.0 can't
 * carry at all (other control bytes, invalid UTF-8). */
static int xml_escape(struct buf *out, const char *s)
{
	size_t n = strlen(s);
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t l = xml_char_len(u + i, n - i);
		int rc;
		if (l == 0)
			return -EINVAL;
		switch (u[i]) {
		case '&': rc = buf_puts(out, "&amp;"); break;
		case '<': rc = buf_puts(out, "&lt;"); break;
		case '>': rc = buf_puts(out, "&gt;"); break;
		case '"': rc = buf_puts(out, "&quot;"); break;
		case '\'': rc = buf_puts(out, "&apos;"); break;
		case '\r': rc = buf_puts(out, "&#13;"); break;
		case '\n': rc = buf_puts(out, "&#10;"); break;
		case '\t': rc = buf_puts(out, "&#9;"); break;
		default: rc = buf_append(out, s + i, l); break;
		}
		if (rc)
			return rc;
		i += l;
	}
	return 0;
}

#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

int s3xml_build_complete(const char *const *etags, size_t nparts, struct buf *out)
{
	if (!etags || nparts == 0 || nparts > 10000)
		return -EINVAL;
	size_t start = out->len;
	int rc = buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			       "<CompleteMultipartUpload xmlns=\"" S3_NS "\">");
	for (size_t i = 0; i < nparts && !rc; i++) {
		const char *e = etags[i];
		if (!e || !*e) {
			rc = -EINVAL;
			break;
		}
		size_t el = strlen(e);
		int quoted = el >= 2 && e[0] == '"' && e[el - 1] == '"';
		rc = buf_printf(out, "<Part><PartNumber>%zu</PartNumber><ETag>", i + 1);
		if (!rc && !quoted)
			rc = buf_puts(out, "&quot;");
		if (!rc)
			rc = xml_escape(out, e);
		if (!rc && !quoted)
			rc = buf_puts(out, "&quot;");
		if (!rc)
			rc = buf_puts(out, "</ETag></Part>");
	}
	if (!rc)
		rc = buf_puts(out, "</CompleteMultipartUpload>");
	if (rc && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}

int s3xml_build_delete(const char *const *keys, size_t nkeys, struct buf *out)
{
	if (!keys || nkeys == 0 || nkeys > 1000)
		return -EINVAL;
	size_t start = out->len;
	int rc = buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			       "<Delete xmlns=\"" S3_NS "\"><Quiet>true</Quiet>");
	for (size_t i = 0; i < nkeys && !rc; i++) {
		if (!keys[i] || !*keys[i]) {
			rc = -EINVAL;
			break;
		}
		rc = buf_puts(out, "<Object><Key>");
		if (!rc)
			rc = xml_escape(out, keys[i]);
		if (!rc)
			rc = buf_puts(out, "</Key></Object>");
	}
	if (!rc)
		rc = buf_puts(out, "</Delete>");
	if (rc && out->data) {
		out->len = start;
		out->data[start] = '\0';
	}
	return rc;
}

/* ---- STS AssumeRole / AssumeRoleWithWebIdentity ---------------------------------------- */

struct sts_ctx {
	struct s3xml_sts *s;
	int dup;
};

static void sts_take(struct sts_ctx *c, struct px *x, char **dst, const char *t, size_t n)
{
	if (*dst) {
		c->dup = 1;
		return;
	}
	trim(&t, &n);
	if (!(*dst = util_strndup(t, n)))
		px_fail(x, -ENOMEM);
}

static void sts_end(struct px *x, const char *t, size_t n)
{
	struct sts_ctx *c = x->ctx;
	struct s3xml_sts *s = c->s;
	if (x->root == 2) {   /* ErrorResponse/Error/{Code,Message,...} */
		if (x->depth == 3 && strcmp(x->names[1], "Error") == 0) {
			if (strcmp(x->names[2], "Code") == 0)
				copy_trunc(s->error.code, sizeof(s->error.code), t, n);
			else if (strcmp(x->names[2], "Message") == 0)
				copy_trunc(s->error.message, sizeof(s->error.message), t, n);
		} else if (x->depth == 2 && strcmp(x->names[1], "RequestId") == 0) {
			copy_trunc(s->error.request_id, sizeof(s->error.request_id), t, n);
		}
		return;
	}
	if (x->depth != 4 || strcmp(x->names[2], "Credentials") != 0)
		return;
	size_t rl = strlen(x->names[1]);
	if (rl < 6 || strcmp(x->names[1] + rl - 6, "Result") != 0)
		return;
	if (strcmp(x->names[3], "AccessKeyId") == 0)
		sts_take(c, x, &s->access_key_id, t, n);
	else if (strcmp(x->names[3], "SecretAccessKey") == 0)
		sts_take(c, x, &s->secret_access_key, t, n);
	else if (strcmp(x->names[3], "SessionToken") == 0)
		sts_take(c, x, &s->session_token, t, n);
	else if (strcmp(x->names[3], "Expiration") == 0) {
		if (s->expiration[0])
			c->dup = 1;
		trim(&t, &n);
		copy_trunc(s->expiration, sizeof(s->expiration), t, n);
	}
}

void s3xml_sts_free(struct s3xml_sts *s)
{
	free(s->access_key_id);
	util_free_secret(s->secret_access_key);
	util_free_secret(s->session_token);
	memset(s, 0, sizeof(*s));
}

int s3xml_parse_sts(const char *xml, size_t len, struct s3xml_sts *out)
{
	static const char *const roots[] = { "AssumeRoleResponse",
		"AssumeRoleWithWebIdentityResponse", "ErrorResponse", NULL };
	struct sts_ctx c = { out, 0 };
	memset(out, 0, sizeof(*out));
	struct px x = { .roots = roots, .on_end = sts_end, .ctx = &c };
	int rc = px_run(&x, xml, len);
	if (rc == 0 && x.root == 2)
		rc = out->error.code[0] ? -EIO : -EPROTO;
	else if (rc == 0 && (c.dup || !out->access_key_id || !out->access_key_id[0] ||
			     !out->secret_access_key || !out->secret_access_key[0] ||
			     !out->session_token || !out->session_token[0] || !out->expiration[0]))
		rc = -EPROTO;
	if (rc && rc != -EIO) {
		s3xml_sts_free(out);
		return rc == -ENOMEM ? -ENOMEM : -EPROTO;
	}
	if (rc == -EIO) {
		struct s3xml_error e = out->error;
		s3xml_sts_free(out);
		out->error = e;
	}
	return rc;
}
