/* fuzz_xml.c - libFuzzer target: every S3 XML parser of src/s3/xml.c on the same hostile
 * document (no crash, no leak, results consistent), and the builders on hostile keys (what
 * they accept must come out as well-formed XML that expat parses back to the same keys). */
#include <errno.h>
#include <expat.h>

#include "fuzz.h"
#include "s3/xml.h"
#include "base/util.h"

static void on_delete_error(void *arg, const char *key, const char *code)
{
	FUZZ_CHECK(key && code);
	(*(size_t *)arg)++;
}

static void parse_documents(const char *xml, size_t len)
{
	struct s3xml_list l;
	size_t dropped = 0;
	int rc = s3xml_parse_list(xml, len, &l, &dropped);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM);
	if (rc == 0) {
		for (size_t i = 0; i < l.nobjects; i++) {
			FUZZ_CHECK(l.objects[i].key && l.objects[i].key[0]);
			FUZZ_CHECK(memchr(l.objects[i].etag, '\0', sizeof(l.objects[i].etag)));
		}
		for (size_t i = 0; i < l.nprefixes; i++)
			FUZZ_CHECK(l.prefixes[i] && l.prefixes[i][0]);
		FUZZ_CHECK(!l.is_truncated || l.next_token);
		s3xml_list_free(&l);
	}

	struct s3xml_error e;
	rc = s3xml_parse_error(xml, len, &e);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM);
	if (rc == 0)
		FUZZ_CHECK(memchr(e.code, '\0', sizeof(e.code)) &&
			   memchr(e.message, '\0', sizeof(e.message)) &&
			   memchr(e.request_id, '\0', sizeof(e.request_id)));

	char *upload_id = NULL;
	rc = s3xml_parse_initiate(xml, len, &upload_id);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM);
	FUZZ_CHECK((rc == 0) == (upload_id != NULL));
	free(upload_id);

	char etag[80];
	rc = s3xml_parse_complete(xml, len, etag, &e);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM || rc == -EIO);
	if (rc == 0)
		FUZZ_CHECK(memchr(etag, '\0', sizeof(etag)));

	struct timespec lm;
	rc = s3xml_parse_copy(xml, len, etag, &lm, &e);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM || rc == -EIO);

	size_t nerr = 0;
	rc = s3xml_parse_delete(xml, len, on_delete_error, &nerr);
	FUZZ_CHECK(rc == -EPROTO || rc == -ENOMEM || rc == -EIO || (rc >= 0 && (size_t)rc == nerr));
}

/* The keys expat reads back from a built Delete body, concatenated with '\n' after each. */
struct readback {
	struct buf keys;
	struct buf text;
	int in_key;
};

static void XMLCALL rb_start(void *u, const XML_Char *name, const XML_Char **atts)
{
	struct readback *r = u;
	(void)atts;
	r->in_key = strcmp(name, "Key") == 0;
	buf_reset(&r->text);
}

static void XMLCALL rb_text(void *u, const XML_Char *s, int len)
{
	struct readback *r = u;
	if (r->in_key && buf_append(&r->text, s, (size_t)len))
		abort();
}

static void XMLCALL rb_end(void *u, const XML_Char *name)
{
	struct readback *r = u;
	if (!strcmp(name, "Key")) {
		if (buf_append(&r->keys, r->text.data ? r->text.data : "", r->text.len) ||
		    buf_append(&r->keys, "\n", 1))
			abort();
	}
	r->in_key = 0;
}

static void build_documents(const uint8_t *data, size_t size)
{
	const char *keys[8];
	char *blk = fuzz_fields(data, size, keys, 8);
	size_t nkeys = 1 + (size ? data[0] % 8 : 0);

	struct buf out = { 0 };
	int rc = s3xml_build_delete(keys, nkeys, &out);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc == 0) {
		/* Well-formed, and the same keys come back (a key without '\n' only, so the
		 * concatenation is unambiguous; CR is normalized by XML unless escaped). */
		struct readback r = { 0 };
		XML_Parser p = XML_ParserCreate("UTF-8");
		XML_SetUserData(p, &r);
		XML_SetElementHandler(p, rb_start, rb_end);
		XML_SetCharacterDataHandler(p, rb_text);
		int ok = XML_Parse(p, out.data, (int)out.len, 1) == XML_STATUS_OK;
		if (!ok)
			fprintf(stderr, "fuzz: built body does not parse: %s\n%s\n",
				XML_ErrorString(XML_GetErrorCode(p)), out.data);
		FUZZ_CHECK(ok);
		struct buf want = { 0 };
		for (size_t i = 0; i < nkeys; i++)
			if (buf_puts(&want, keys[i]) || buf_append(&want, "\n", 1))
				abort();
		FUZZ_CHECK(r.keys.len == want.len && memcmp(r.keys.data, want.data, want.len) == 0);
		XML_ParserFree(p);
		buf_free(&r.keys);
		buf_free(&r.text);
		buf_free(&want);
	} else {
		FUZZ_CHECK(out.len == 0);
	}
	buf_reset(&out);
	rc = s3xml_build_complete(keys, nkeys, &out);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc == 0) {
		XML_Parser p = XML_ParserCreate("UTF-8");
		FUZZ_CHECK(XML_Parse(p, out.data, (int)out.len, 1) == XML_STATUS_OK);
		XML_ParserFree(p);
	}
	buf_free(&out);
	free(blk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > (1u << 20))
		return 0;
	parse_documents((const char *)data, size);
	build_documents(data, size);
	return 0;
}
