/* fuzz_creds.c - libFuzzer target: the parsers of the credential endpoints' answers on the
 * same hostile bytes: the strict JSON reader, the container/IMDS and credential_process
 * answers, the STS XML answer, and the credential_process command-line splitter. No crash,
 * no leak; what is accepted is well-formed (printable keys, a NUL-free decoded string);
 * no error message quotes the document. */
#include <errno.h>

#include "fuzz.h"
#include "s3/credsrc.h"
#include "s3/json.h"

static void check_value(const struct creds_value *v, int rc)
{
	if (rc)
		return;
	FUZZ_CHECK(v->access_key_id && v->access_key_id[0] && v->secret_access_key &&
		   v->secret_access_key[0]);
	for (const char *p = v->secret_access_key; *p; p++)
		FUZZ_CHECK(*p > ' ' && *p <= '~');
	for (const char *p = v->session_token; p && *p; p++)
		FUZZ_CHECK(*p > ' ' && *p <= '~');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	const char *text = (const char *)data;
	static const char *const names[] = { "AccessKeyId", "SecretAccessKey", "Token" };
	char *v[3];
	char err[512];
	int rc = json_get_members(text, size, names, v, 3);
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOMEM);
	for (int i = 0; i < 3; i++) {
		FUZZ_CHECK(rc == 0 || v[i] == NULL);
		if (v[i])
			FUZZ_CHECK(strlen(v[i]) <= size);
	}
	json_free_values(v, 3);

	struct creds_value cv;
	for (int process = 0; process < 2; process++) {
		err[0] = '\0';
		rc = credsrc_parse_json(text, size, process, &cv, err, sizeof(err));
		FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EACCES || rc == -ENOMEM);
		FUZZ_CHECK(rc == 0 || rc == -ENOMEM || err[0]);
		check_value(&cv, rc);
		creds_value_clear(&cv);
	}
	err[0] = '\0';
	rc = credsrc_parse_sts(text, size, &cv, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -EACCES || rc == -ENOMEM);
	check_value(&cv, rc);
	if (rc == 0)
		FUZZ_CHECK(cv.session_token && cv.expiration > 0);
	creds_value_clear(&cv);

	const char *f[1];
	char *blk = fuzz_fields(data, size, f, 1);
	char **argv = NULL;
	rc = credsrc_split_command(f[0], &argv);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc == 0) {
		FUZZ_CHECK(argv[0] != NULL);
		for (size_t i = 0; argv[i]; i++)
			FUZZ_CHECK(strlen(argv[i]) <= strlen(f[0]));
	}
	free(argv);
	free(blk);
	return 0;
}
