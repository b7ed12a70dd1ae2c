/* test_sse.c - the encryption and Requester Pays headers (s3/sse.c): which request gets
 * which header, and the customer key file's checks (owner-only, 32 bytes or base64). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/log.h"
#include "s3/sse.h"

static const char *find(const struct sigv4_header *h, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(h[i].name, name))
			return h[i].value;
	return NULL;
}

static char keyfile[64];

static void write_key(const void *data, size_t len, mode_t mode)
{
	snprintf(keyfile, sizeof(keyfile), "/tmp/test_sse.%d", getpid());
	FILE *f = fopen(keyfile, "w");
	cr_assert(f);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	fclose(f);
	cr_assert_eq(chmod(keyfile, mode), 0);
}

static void setup(void)
{
	log_init(LOG_TO_STDERR, 3, "test_sse");
}

static void teardown(void)
{
	if (keyfile[0])
		unlink(keyfile);
}

TestSuite(sse, .init = setup, .fini = teardown);

Test(sse, kms_on_new_objects_only)
{
	struct ferry_config c;
	struct s3_sse s;
	struct sigv4_header h[8];
	cfg_init(&c);
	c.s3_sse = strdup("aws:kms");
	c.s3_sse_kms_key_id = strdup("k-1");
	cr_assert_eq(s3_sse_load(&c, &s), 0);
	size_t n = s3_sse_headers(&s, S3_SSE_OBJECT | S3_SSE_WRITE, h, 8);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(find(h, n, "x-amz-server-side-encryption"), "aws:kms");
	cr_assert_str_eq(find(h, n, "x-amz-server-side-encryption-aws-kms-key-id"), "k-1");
	cr_assert_eq(s3_sse_headers(&s, S3_SSE_OBJECT | S3_SSE_READ, h, 8), 0, "reads: none");
	cr_assert_eq(s3_sse_headers(&s, 0, h, 8), 0, "bucket requests: none");
	cfg_free(&c);
}

Test(sse, customer_key_on_every_object_request_and_payer_everywhere)
{
	unsigned char key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (unsigned char)i;
	write_key(key, 32, 0600);
	struct ferry_config c;
	struct s3_sse s;
	struct sigv4_header h[8];
	cfg_init(&c);
	c.s3_sse_c_key_file = strdup(keyfile);
	c.s3_request_payer = 1;
	cr_assert_eq(s3_sse_load(&c, &s), 0);
	size_t n = s3_sse_headers(&s, S3_SSE_OBJECT | S3_SSE_READ, h, 8);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(find(h, n, "x-amz-request-payer"), "requester");
	cr_assert_str_eq(find(h, n, "x-amz-server-side-encryption-customer-algorithm"), "AES256");
	cr_assert_str_eq(find(h, n, "x-amz-server-side-encryption-customer-key"),
			 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
	/* md5(00..1f) = b4ffcb23737cec315a4a4d1aa2a620ce */
	cr_assert_str_eq(find(h, n, "x-amz-server-side-encryption-customer-key-MD5"),
			 "tP/LI3N87DFaSk0aoqYgzg==");
	n = s3_sse_headers(&s, S3_SSE_OBJECT | S3_SSE_WRITE | S3_SSE_COPY, h, 8);
	cr_assert_eq(n, 7, "a copy: the source's key and the destination's");
	cr_assert(find(h, n, "x-amz-copy-source-server-side-encryption-customer-key"));
	cr_assert_eq(s3_sse_headers(&s, S3_SSE_OBJECT, h, 8), 1, "a delete: the payer only");
	cr_assert_eq(s3_sse_headers(&s, 0, h, 8), 1, "a listing: the payer only");
	s3_sse_wipe(&s);
	/* the same key as base64 text, with a newline */
	const char *b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n";
	write_key(b64, strlen(b64), 0400);
	cr_assert_eq(s3_sse_load(&c, &s), 0);
	cr_assert_str_eq(s.key_b64, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
	cfg_free(&c);
}

Test(sse, key_files_refused)
{
	unsigned char key[32] = { 0 };
	struct ferry_config c;
	struct s3_sse s;
	cfg_init(&c);
	write_key(key, 32, 0640);
	c.s3_sse_c_key_file = strdup(keyfile);
	cr_assert_eq(s3_sse_load(&c, &s), -EINVAL, "readable by the group");
	write_key(key, 31, 0600);
	cr_assert_eq(s3_sse_load(&c, &s), -EINVAL, "31 bytes");
	free(c.s3_sse_c_key_file);
	c.s3_sse_c_key_file = strdup("/nonexistent/key");
	cr_assert_eq(s3_sse_load(&c, &s), -ENOENT);
	cfg_free(&c);
}
