/* fuzz_cfg.c - libFuzzer target: the config-file parser (cfg_load_file, cfg_set,
 * cfg_finish) and the AWS config and credentials file parser (awsini_parse) on hostile files.
 * Invariants: no crash or leak; an error names its key but never holds the value of an
 * s3_secret_access_key or aws_secret_access_key line (spec 9: secrets are never logged). */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/cfg.h"
#include "s3/awsini.h"
#include "fuzz.h"

static int memfile(const uint8_t *data, size_t size, char path[64])
{
	int fd = memfd_create("fuzz_cfg", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	if (size && write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
}

/* What follows <name> on its line, less blanks, '=' and ':' (the value of "name = VALUE",
 * and also of a mistyped "name VALUE" or "name: VALUE"); the last one in the text. */
static void secret_values(const char *text, const char *name, char *out, size_t outlen)
{
	out[0] = '\0';
	for (const char *p = strstr(text, name); p; p = strstr(p + 1, name)) {
		const char *eq = p + strlen(name);
		const char *nl = strchr(eq, '\n');
		while (*eq == ' ' || *eq == '\t' || *eq == '=' || *eq == ':')
			eq++;
		if (nl && eq > nl)
			continue;
		size_t n = nl ? (size_t)(nl - eq) : strlen(eq);
		const char *hash = memchr(eq, '#', n);
		if (hash)
			n = (size_t)(hash - eq);
		while (n && (eq[n - 1] == ' ' || eq[n - 1] == '\t' || eq[n - 1] == '\r'))
			n--;
		if (n >= outlen)
			n = outlen - 1;
		memcpy(out, eq, n);
		out[n] = '\0';
	}
}

/* A secret distinctive enough that finding it in an error is a leak, not a coincidence:
 * at least 10 bytes with an upper-case letter and a digit (no error template has both). */
static int distinctive(const char *s)
{
	int up = 0, dig = 0;
	for (const char *p = s; *p; p++) {
		up |= *p >= 'A' && *p <= 'Z';
		dig |= *p >= '0' && *p <= '9';
	}
	return strlen(s) >= 10 && up && dig;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	char *text = malloc(size + 1);
	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	char secret[512];
	char path[64], err[512];

	/* 1. The config file. */
	struct ferry_config cfg;
	cfg_init(&cfg);
	int fd = memfile(data, size, path);
	err[0] = '\0';
	int rc = cfg_load_file(&cfg, path, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EPERM || rc == -ENOMEM);
	FUZZ_CHECK(rc == 0 || err[0]);
	secret_values(text, "s3_secret_access_key", secret, sizeof(secret));
	if (distinctive(secret) && strstr(err, secret)) {
		fprintf(stderr, "fuzz: the secret is in the error: %s\n", err);
		abort();
	}
	if (rc == 0) {
		/* memfd files are 0600 and owned by us: a secret there is accepted. */
		FUZZ_CHECK(cfg.s3_prefix &&
			   (!cfg.s3_prefix[0] || cfg.s3_prefix[strlen(cfg.s3_prefix) - 1] == '/'));
		FUZZ_CHECK(cfg.file_mode <= 07777 && cfg.dir_mode <= 07777);
		err[0] = '\0';
		rc = cfg_finish(&cfg, err, sizeof(err));
		FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
		if (distinctive(secret))
			FUZZ_CHECK(!strstr(err, secret));
		if (rc == 0) {
			FUZZ_CHECK(cfg.s3_endpoint && cfg.state_dir && cfg.state_dir[0] == '/');
			FUZZ_CHECK(cfg.s3_part_size >= (5ull << 20) &&
				   cfg.s3_multipart_threshold >= cfg.s3_part_size);
		}
	}
	cfg_free(&cfg);
	close(fd);

	/* 2. The same bytes as an AWS shared credentials file and as a config file: parsed
	 * or refused, and a value never spans a line. (Not through the chain: a fuzzed
	 * credential_process must never run.) */
	for (int is_config = 0; is_config < 2; is_config++) {
		struct awsini *f = NULL;
		unsigned line = 0;
		rc = awsini_parse((const char *)data, size, is_config, &f, &line);
		FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
		FUZZ_CHECK(rc == 0 ? f != NULL : f == NULL);
		if (rc == 0) {
			const char *v = awsini_get(f, "default", "aws_secret_access_key");
			FUZZ_CHECK(!v || !strchr(v, '\n'));
			awsini_free(f);
		}
	}
	(void)secret_values;

	free(text);
	return 0;
}
