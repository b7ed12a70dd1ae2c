/* sse.c - encryption and Requester Pays headers (see sse.h). Pure after s3_sse_load. */
#include "s3/sse.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/log.h"

static int load_key(const char *file, struct s3_sse *out)
{
	unsigned char raw[128], key[48], md[EVP_MAX_MD_SIZE];
	unsigned mdlen;
	struct stat st;
	const char *why = NULL;
	int rc = -EINVAL;
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		log_err("s3_sse_c_key_file %s: %s", file, strerror(errno));
		return rc;
	}
	ssize_t n = -1;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		why = "not a regular file";
	else if (st.st_uid != geteuid())
		why = "not owned by this user";
	else if (st.st_mode & (S_IRWXG | S_IRWXO))
		why = "readable by others than its owner (chmod 600 it)";
	else if ((n = read(fd, raw, sizeof(raw))) < 0)
		why = strerror(errno);
	close(fd);
	if (!why) {
		size_t len = (size_t)n;
		while (len && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
			len--;
		if ((size_t)n == 32) {
			memcpy(key, raw, 32);
		} else if (len == 44 && EVP_DecodeBlock(key, raw, 44) == 33 && raw[43] == '=') {
			;   /* base64 of 32 bytes: 44 characters, one '=' of padding */
		} else {
			why = "not a 256-bit key (32 bytes, or their base64)";
		}
	}
	if (!why) {
		EVP_EncodeBlock((unsigned char *)out->key_b64, key, 32);
		EVP_Digest(key, 32, md, &mdlen, EVP_md5(), NULL);
		EVP_EncodeBlock((unsigned char *)out->md5_b64, md, (int)mdlen);
		out->customer = 1;
		rc = 0;
	} else {
		log_err("s3_sse_c_key_file %s: %s", file, why);
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int s3_sse_load(const struct ferry_config *cfg, struct s3_sse *out)
{
	memset(out, 0, sizeof(*out));
	out->sse = cfg->s3_sse && cfg->s3_sse[0] ? cfg->s3_sse : NULL;
	out->kms_key_id = cfg->s3_sse_kms_key_id && cfg->s3_sse_kms_key_id[0] ?
			  cfg->s3_sse_kms_key_id : NULL;
	out->request_payer = cfg->s3_request_payer;
	if (cfg->s3_sse_c_key_file && cfg->s3_sse_c_key_file[0])
		return load_key(cfg->s3_sse_c_key_file, out);
	return 0;
}

void s3_sse_wipe(struct s3_sse *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

size_t s3_sse_headers(const struct s3_sse *s, unsigned kind, struct sigv4_header *out,
		      size_t max)
{
	size_t n = 0;
#define ADD(k, v) do { if (n < max) out[n++] = (struct sigv4_header){ (k), (v) }; } while (0)
	if (s->request_payer)
		ADD("x-amz-request-payer", "requester");
	if (!(kind & S3_SSE_OBJECT))
		return n;
	if (s->customer && (kind & (S3_SSE_WRITE | S3_SSE_READ))) {
		ADD("x-amz-server-side-encryption-customer-algorithm", "AES256");
		ADD("x-amz-server-side-encryption-customer-key", s->key_b64);
		ADD("x-amz-server-side-encryption-customer-key-MD5", s->md5_b64);
	}
	if (s->customer && (kind & S3_SSE_COPY)) {
		ADD("x-amz-copy-source-server-side-encryption-customer-algorithm", "AES256");
		ADD("x-amz-copy-source-server-side-encryption-customer-key", s->key_b64);
		ADD("x-amz-copy-source-server-side-encryption-customer-key-MD5", s->md5_b64);
	}
	if (!s->customer && s->sse && (kind & S3_SSE_WRITE)) {
		ADD("x-amz-server-side-encryption", s->sse);
		if (s->kms_key_id && !strcmp(s->sse, "aws:kms"))
			ADD("x-amz-server-side-encryption-aws-kms-key-id", s->kms_key_id);
	}
#undef ADD
	return n;
}
