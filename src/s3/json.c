/* json.c - the strict JSON reader of json.h: a recursive-descent validator over the whole
 * document that keeps the top-level members the caller asked for. */
#include "s3/json.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define JSON_MAX_DEPTH 32

struct json_rd {
	const char *p, *end;
	int depth;
};

static void json_ws(struct json_rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int json_hex4(struct json_rd *r, unsigned *out)
{
	unsigned v = 0;
	if (r->end - r->p < 4)
		return -EPROTO;
	for (int i = 0; i < 4; i++) {
		char ch = *r->p++;
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -EPROTO;
	}
	*out = v;
	return 0;
}

static int json_put_utf8(struct buf *b, unsigned cp)
{
	char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return b ? buf_append(b, u, n) : 0;
}

/* Length of the valid UTF-8 sequence at p (at most avail bytes), 0 if invalid. */
static size_t json_utf8_len(const unsigned char *p, size_t avail)
{
	unsigned c = p[0], cp;
	size_t n;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* A string at r->p (on the opening quote). Decoded into out when out is not NULL. */
static int json_string(struct json_rd *r, struct buf *out)
{
	r->p++;
	while (r->p < r->end) {
		unsigned char ch = (unsigned char)*r->p;
		if (ch == '"') {
			r->p++;
			return out && !out->data ? buf_puts(out, "") : 0;
		}
		if (ch < 0x20)
			return -EPROTO;
		if (ch != '\\') {
			size_t n =
				json_utf8_len((const unsigned char *)r->p, (size_t)(r->end - r->p));
			if (!n)
				return -EPROTO;
			if (out && buf_append(out, r->p, n))
				return -ENOMEM;
			r->p += n;
			continue;
		}
		if (++r->p >= r->end)
			return -EPROTO;
		char e = *r->p++;
		const char *simple = strchr("\"\\/bfnrt", e);
		if (e && simple) {
			static const char map[] = "\"\\/\b\f\n\r\t";
			if (out && buf_append(out, &map[simple - "\"\\/bfnrt"], 1))
				return -ENOMEM;
			continue;
		}
		if (e != 'u')
			return -EPROTO;
		unsigned cp, lo;
		if (json_hex4(r, &cp))
			return -EPROTO;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return -EPROTO;     /* a lone low surrogate */
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (r->end - r->p < 6 || r->p[0] != '\\' || r->p[1] != 'u')
				return -EPROTO;
			r->p += 2;
			if (json_hex4(r, &lo) || lo < 0xdc00 || lo > 0xdfff)
				return -EPROTO;
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
		}
		if (cp == 0)
			return -EPROTO;         /* would cut the C string */
		if (json_put_utf8(out, cp))
			return -ENOMEM;
	}
	return -EPROTO;
}

static int json_digits(struct json_rd *r)
{
	const char *s = r->p;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
		r->p++;
	return r->p > s ? 0 : -EPROTO;
}

static int json_number(struct json_rd *r)
{
	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (r->p < r->end && *r->p == '0')
		r->p++;
	else if (json_digits(r))
		return -EPROTO;
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (json_digits(r))
			return -EPROTO;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (json_digits(r))
			return -EPROTO;
	}
	return 0;
}

static int json_literal(struct json_rd *r, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n))
		return -EPROTO;
	r->p += n;
	return 0;
}

struct json_want {
	const char *const *names;
	char **values;
	size_t n;
};

static int json_value(struct json_rd *r, struct json_want *w);

/* An object at r->p; top-level members are matched against w (NULL below the top). */
static int json_object(struct json_rd *r, struct json_want *w)
{
	int rc;
	r->p++;
	json_ws(r);
	if (r->p < r->end && *r->p == '}') {
		r->p++;
		return 0;
	}
	for (;;) {
		struct buf name = { 0 };
		json_ws(r);
		if (r->p >= r->end || *r->p != '"')
			return -EPROTO;
		if ((rc = json_string(r, w ? &name : NULL))) {
			buf_free(&name);
			return rc;
		}
		json_ws(r);
		if (r->p >= r->end || *r->p != ':') {
			buf_free(&name);
			return -EPROTO;
		}
		r->p++;
		json_ws(r);
		size_t which = w ? w->n : 0;
		for (size_t i = 0; w && i < w->n; i++)
			if (name.data && strcmp(name.data, w->names[i]) == 0)
				which = i;
		buf_free(&name);
		if (w && which < w->n) {
			if (w->values[which])
				return -EPROTO;  /* named twice */
			const char *start = r->p;
			if (r->p < r->end && *r->p == '"') {
				struct buf v = { 0 };
				if ((rc = json_string(r, &v))) {
					util_free_secret(v.data);
					return rc;
				}
				w->values[which] = v.data;
			} else if (r->p < r->end &&
				   (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))) {
				if ((rc = json_number(r)))
					return rc;
				if (!(w->values[which] =
					      util_strndup(start, (size_t)(r->p - start))))
					return -ENOMEM;
			} else if ((rc = json_value(r, NULL))) {
				return rc;
			}
		} else if ((rc = json_value(r, NULL))) {
			return rc;
		}
		json_ws(r);
		if (r->p >= r->end)
			return -EPROTO;
		if (*r->p == '}') {
			r->p++;
			return 0;
		}
		if (*r->p++ != ',')
			return -EPROTO;
	}
}

static int json_array(struct json_rd *r)
{
	int rc;
	r->p++;
	json_ws(r);
	if (r->p < r->end && *r->p == ']') {
		r->p++;
		return 0;
	}
	for (;;) {
		json_ws(r);
		if ((rc = json_value(r, NULL)))
			return rc;
		json_ws(r);
		if (r->p >= r->end)
			return -EPROTO;
		if (*r->p == ']') {
			r->p++;
			return 0;
		}
		if (*r->p++ != ',')
			return -EPROTO;
	}
}

static int json_value(struct json_rd *r, struct json_want *w)
{
	int rc;
	if (r->p >= r->end)
		return -EPROTO;
	switch (*r->p) {
	case '{':
		if (++r->depth > JSON_MAX_DEPTH)
			return -EPROTO;
		rc = json_object(r, w);
		r->depth--;
		return rc;
	case '[':
		if (w || ++r->depth > JSON_MAX_DEPTH)
			return -EPROTO;
		rc = json_array(r);
		r->depth--;
		return rc;
	case '"':
		return w ? -EPROTO : json_string(r, NULL);
	case 't':
		return w ? -EPROTO : json_literal(r, "true");
	case 'f':
		return w ? -EPROTO : json_literal(r, "false");
	case 'n':
		return w ? -EPROTO : json_literal(r, "null");
	default:
		if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
			return w ? -EPROTO : json_number(r);
		return -EPROTO;
	}
}

void json_free_values(char **values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		util_free_secret(values[i]);
		values[i] = NULL;
	}
}

int json_get_members(const char *text, size_t len, const char *const *names, char **values,
		     size_t n)
{
	struct json_rd r = { text, text + len, 0 };
	struct json_want w = { names, values, n };
	for (size_t i = 0; i < n; i++)
		values[i] = NULL;
	/* a UTF-8 byte order mark is tolerated, as some writers emit one */
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		r.p += 3;
	json_ws(&r);
	if (r.p >= r.end || *r.p != '{') {
		return -EPROTO;
	}
	int rc = json_value(&r, &w);
	if (!rc) {
		json_ws(&r);
		if (r.p != r.end)
			rc = -EPROTO;
	}
	if (rc)
		json_free_values(values, n);
	return rc;
}
