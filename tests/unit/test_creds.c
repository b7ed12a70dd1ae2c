/* test_creds.c - the credential parsers (json.h, awsini.h, credsrc.h) and the part of the
 * chain that needs no server (environment, shared files, credential_process, config keys).
 * The network sources are covered by tests/integration/creds.sh. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cfg.h"
#include "s3/awsini.h"
#include "s3/creds.h"
#include "s3/credsrc.h"
#include "s3/json.h"

static char err[512];

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

/* ---- JSON ---------------------------------------------------------------------------- */

static int json1(const char *text, const char *name, char **v)
{
	const char *names[] = { name };
	return json_get_members(text, strlen(text), names, v, 1);
}

Test(json, members)
{
	static const char *const names[] = { "a", "b", "c", "d" };
	char *v[4];
	const char *doc = " {\"x\": [1, {\"a\": \"nested\"}, null, true, false, -1.5e3],"
			  " \"a\": \"A\\u00e9\\ud83d\\ude00\\n\", \"b\": 12, \"c\": {\"a\": 1}} ";
	cr_assert_eq(json_get_members(doc, strlen(doc), names, v, 4), 0);
	cr_assert_str_eq(v[0], "A\xc3\xa9\xf0\x9f\x98\x80\n");
	cr_assert_str_eq(v[1], "12");
	cr_assert_null(v[2]);     /* an object is not a string */
	cr_assert_null(v[3]);     /* absent */
	json_free_values(v, 4);
}

Test(json, strict)
{
	static const char *const bad[] = {
		"", "[]", "\"s\"", "{", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":1} x", "{'a':1}",
		"{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":\"\\x\"}", "{\"a\":\"\\ud800\"}",
		"{\"a\":\"\\udc00\"}", "{\"a\":\"\\u0000\"}", "{\"a\":\"tab\there\"}",
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":tru}", "{\"a\":1}{}",
		"{\"a\":1,\"a\":2}", "{\"a\":\"x\"\"b\":1}", "{\"a\":NaN}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *v = (char *)1;
		cr_assert_eq(json1(bad[i], "a", &v), -EPROTO, "accepted: %s", bad[i]);
		cr_assert_null(v);
	}
	/* deep nesting is refused, not a stack overflow */
	char deep[200];
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"a\":", 5);
	deep[sizeof(deep) - 1] = '\0';
	char *v;
	cr_assert_eq(json1(deep, "a", &v), -EPROTO);
}

/* ---- the shared files ---------------------------------------------------------------- */

Test(awsini, config_and_credentials)
{
	const char *cfgtxt = "# comment\n[default]\nregion = eu-west-1\n"
			     "[profile dev]\nrole_arn = arn:aws:iam::1:role/r\r\n"
			     "source_profile=default\ns3 =\n  endpoint_url = https://nested\n"
			     "; another\n[sso-session x]\nregion = nope\n[profile  spaced ]\nk=v\n"
			     "[profile dev]\nregion = us-west-2\n";
	struct awsini *f;
	unsigned line;
	cr_assert_eq(awsini_parse(cfgtxt, strlen(cfgtxt), 1, &f, &line), 0);
	cr_assert_str_eq(awsini_get(f, "default", "region"), "eu-west-1");
	cr_assert_str_eq(awsini_get(f, "dev", "role_arn"), "arn:aws:iam::1:role/r");
	cr_assert_str_eq(awsini_get(f, "dev", "source_profile"), "default");
	cr_assert_str_eq(awsini_get(f, "dev", "region"), "us-west-2");    /* later wins */
	cr_assert_null(awsini_get(f, "dev", "endpoint_url"));             /* nested: not ours */
	cr_assert_null(awsini_get(f, "x", "region"));
	cr_assert_str_eq(awsini_get(f, "spaced", "k"), "v");
	cr_assert(awsini_has_profile(f, "dev"));
	cr_assert(!awsini_has_profile(f, "prod"));
	awsini_free(f);

	/* in the credentials file, sections are bare profile names */
	const char *cr = "[default]\naws_access_key_id = AK\naws_secret_access_key = S/K+=\n";
	cr_assert_eq(awsini_parse(cr, strlen(cr), 0, &f, &line), 0);
	cr_assert_str_eq(awsini_get(f, "default", "aws_secret_access_key"), "S/K+=");
	awsini_free(f);

	cr_assert_eq(awsini_parse("[default\nk=v\n", 12, 0, &f, &line), -EINVAL);
	cr_assert_eq(line, 1);
	cr_assert_eq(awsini_parse("a\0b", 3, 0, &f, &line), -EINVAL);
}

/* ---- the answers ---------------------------------------------------------------------- */

Test(credsrc, json_answers)
{
	struct creds_value v;
	const char *imds =
		"{\"Code\":\"Success\",\"LastUpdated\":\"2026-12-06T10:00:00Z\","
		"\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIA1\",\"SecretAccessKey\":\"s/1+\","
		"\"Token\":\"tok==\",\"Expiration\":\"2026-12-06T16:00:00Z\"}";
	cr_assert_eq(credsrc_parse_json(imds, strlen(imds), 0, &v, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v.access_key_id, "ASIA1");
	cr_assert_str_eq(v.session_token, "tok==");
	cr_assert_eq(v.expiration, 1796572800);
	creds_value_clear(&v);

	const char *proc = "{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SK\"}";
	cr_assert_eq(credsrc_parse_json(proc, strlen(proc), 1, &v, err, sizeof(err)), 0, "%s", err);
	cr_assert_null(v.session_token);
	cr_assert_eq(v.expiration, 0);
	creds_value_clear(&v);

	static const char *const bad[] = {
		"{\"Version\": 2, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SK\"}",
		"{\"Version\": 1, \"AccessKeyId\": \"A K\", \"SecretAccessKey\": \"SK\"}",
		"{\"Version\": 1, \"AccessKeyId\": \"AK\"}",
		"{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"SK\", "
		"\"Expiration\": \"tomorrow\"}",
		"not json",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_neq(credsrc_parse_json(bad[i], strlen(bad[i]), 1, &v, err, sizeof(err)),
			      0);
		cr_assert(!strstr(err, "SK") && !strstr(err, "AK"), "%s", err);
	}
	/* the container/IMDS answer needs Token and Expiration */
	cr_assert_eq(credsrc_parse_json(proc, strlen(proc), 0, &v, err, sizeof(err)), -EPROTO);
	const char *failed =
		"{\"Code\":\"Failure\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"B\"}";
	cr_assert_eq(credsrc_parse_json(failed, strlen(failed), 0, &v, err, sizeof(err)), -EACCES);
}

Test(credsrc, sts_answers)
{
	struct creds_value v;
	const char *ok =
		"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/"
		"2011-06-15/\"><AssumeRoleWithWebIdentityResult><Credentials>"
		"<AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>sec</SecretAccessKey>"
		"<SessionToken>tok</SessionToken><Expiration>2026-12-06T16:00:00Z</Expiration>"
		"</Credentials></AssumeRoleWithWebIdentityResult>"
		"</AssumeRoleWithWebIdentityResponse>";
	cr_assert_eq(credsrc_parse_sts(ok, strlen(ok), &v, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(v.access_key_id, "ASIAX");
	cr_assert_str_eq(v.secret_access_key, "sec");
	cr_assert_str_eq(v.session_token, "tok");
	creds_value_clear(&v);
	const char *e = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
			"<Message>no</Message></Error><RequestId>r</RequestId></ErrorResponse>";
	cr_assert_eq(credsrc_parse_sts(e, strlen(e), &v, err, sizeof(err)), -EACCES);
	cr_assert(strstr(err, "AccessDenied"));
	static const char *const bad[] = {
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"</Credentials></AssumeRoleResult></AssumeRoleResponse>",
		"<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>A</AccessKeyId>"
		"<AccessKeyId>B</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t"
		"</SessionToken><Expiration>2026-12-06T16:00:00Z</Expiration></Credentials>"
		"</AssumeRoleResult></AssumeRoleResponse>",
		"<Other/>", "<AssumeRoleResponse>", "",
		"<!DOCTYPE x [<!ENTITY a \"b\">]><AssumeRoleResponse/>",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(credsrc_parse_sts(bad[i], strlen(bad[i]), &v, err, sizeof(err)),
			     -EPROTO, "accepted %s", bad[i]);
}

Test(credsrc, command_and_urls)
{
	char **argv;
	cr_assert_eq(credsrc_split_command("/bin/tool --a 'b c' \"d\\\"e\" f\\ g", &argv), 0);
	cr_assert_str_eq(argv[0], "/bin/tool");
	cr_assert_str_eq(argv[1], "--a");
	cr_assert_str_eq(argv[2], "b c");
	cr_assert_str_eq(argv[3], "d\"e");
	cr_assert_str_eq(argv[4], "f g");
	cr_assert_null(argv[5]);
	free(argv);
	cr_assert_eq(credsrc_split_command("tool 'open", &argv), -EINVAL);
	cr_assert_eq(credsrc_split_command("   ", &argv), -EINVAL);

	char *url;
	cr_assert_eq(credsrc_container_url("/v2/credentials/x", NULL, &url), 0);
	cr_assert_str_eq(url, "http://169.254.170.2/v2/credentials/x");
	free(url);
	cr_assert_eq(credsrc_container_url(NULL, "http://127.0.0.1:9/c", &url), 0);
	free(url);
	cr_assert_eq(credsrc_container_url(NULL, "http://169.254.170.23/v1/credentials", &url), 0);
	free(url);
	cr_assert_eq(credsrc_container_url(NULL, "https://creds.example.com/c", &url), 0);
	free(url);
	cr_assert_eq(credsrc_container_url(NULL, "http://evil.example.com/c", &url), -EINVAL);
	cr_assert_eq(credsrc_container_url(NULL, "http://127.0.0.1@evil/c", &url), -EINVAL);
	cr_assert_eq(credsrc_container_url(NULL, "http://169.254.170.2.evil/c", &url), -EINVAL);
}

/* ---- the chain, without servers ------------------------------------------------------ */

static char dir[64];

static void clear_env(void)
{
	static const char *const vars[] = { "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3" };
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ferry-creds.XXXXXX");
	cr_assert(mkdtemp(dir));
	char p[128];
	snprintf(p, sizeof(p), "%s/config", dir);
	write_file(p,
		   "[default]\nregion = eu-central-1\n"
		   "[profile cfgkeys]\naws_access_key_id = CFGID\naws_secret_access_key = CFGSK\n"
		   "endpoint_url = http://127.0.0.1:1\n"
		   "[profile proc]\ncredential_process = /bin/echo '{\"Version\":1,"
		   "\"AccessKeyId\":\"PROCID\",\"SecretAccessKey\":\"PROCSK\"}'\n"
		   "[profile both]\ncredential_process = /bin/false\n");
	setenv("AWS_CONFIG_FILE", p, 1);
	snprintf(p, sizeof(p), "%s/credentials", dir);
	write_file(p, "[default]\naws_access_key_id = DEFID\naws_secret_access_key = DEFSK\n"
		      "[both]\naws_access_key_id = BOTHID\naws_secret_access_key = BOTHSK\n"
		      "aws_session_token = BOTHTOK\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	clear_env();
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	unsetenv("AWS_CONFIG_FILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

/* The access key id the chain resolves with cfg, or the error. */
static const char *resolve(struct ferry_config *cfg, char *src, size_t srclen)
{
	static char id[64];
	struct creds *c;
	struct creds_value v;
	unsigned gen;
	if (creds_new(cfg, &c, err, sizeof(err)))
		return "error";
	cr_assert_eq(creds_get(c, &v, &gen), 0);
	snprintf(id, sizeof(id), "%s", v.access_key_id);
	snprintf(src, srclen, "%s", creds_source(c));
	creds_value_clear(&v);
	creds_free(c);
	return id;
}

Test(chain, order, .init = setup, .fini = teardown)
{
	struct ferry_config c;
	char src[256];
	cfg_init(&c);
	c.s3_access_key_id = strdup("OWNID");
	c.s3_secret_access_key = strdup("OWNSK");

	setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "ENVSK", 1);
	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "ENVID");
	cr_assert_str_eq(src, "environment");
	unsetenv("AWS_ACCESS_KEY_ID");
	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "error");   /* half set: an error */
	unsetenv("AWS_SECRET_ACCESS_KEY");

	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "DEFID");
	setenv("AWS_PROFILE", "proc", 1);
	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "PROCID", "%s", err);
	cr_assert(strstr(src, "credential_process"));
	setenv("AWS_PROFILE", "cfgkeys", 1);
	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "CFGID");
	cr_assert(strstr(src, "config file"));
	/* the credentials file's keys come before the profile's credential_process */
	setenv("AWS_PROFILE", "both", 1);
	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "BOTHID");
	unsetenv("AWS_PROFILE");

	/* s3_profile wins over AWS_PROFILE; a profile no file has is a configuration error */
	setenv("AWS_PROFILE", "cfgkeys", 1);
	c.s3_profile = strdup("proc");
	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "PROCID");
	free(c.s3_profile);
	c.s3_profile = strdup("nope");
	cr_assert_eq(creds_configure(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "s3_profile"));
	free(c.s3_profile);
	c.s3_profile = NULL;
	unsetenv("AWS_PROFILE");

	/* nothing else: the config file's own keys, last */
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "OWNID");
	cr_assert_str_eq(src, "config file");
	free(c.s3_access_key_id);
	c.s3_access_key_id = NULL;
	cr_assert_str_eq(resolve(&c, src, sizeof(src)), "error");
	cr_assert(strstr(err, "no S3 credentials"));
	cfg_free(&c);
}

Test(chain, process_failure_is_an_error, .init = setup, .fini = teardown)
{
	struct ferry_config c;
	struct creds *cr;
	cfg_init(&c);
	char p[128];
	snprintf(p, sizeof(p), "%s/config", dir);
	write_file(p, "[default]\ncredential_process = /bin/false\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	cr_assert_eq(creds_new(&c, &cr, err, sizeof(err)), -EACCES);
	cr_assert(strstr(err, "exited with status 1"), "%s", err);
	cfg_free(&c);
}

Test(chain, region_and_endpoint, .init = setup, .fini = teardown)
{
	struct ferry_config c;
	cfg_init(&c);
	cr_assert_eq(creds_configure(&c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.s3_region, "eu-central-1");     /* the profile's */
	cr_assert_null(c.s3_endpoint);
	setenv("AWS_DEFAULT_REGION", "us-west-1", 1);
	cr_assert_eq(creds_configure(&c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.s3_region, "us-west-1");
	setenv("AWS_REGION", "ap-south-1", 1);
	cr_assert_eq(creds_configure(&c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.s3_region, "ap-south-1");
	cfg_free(&c);

	/* s3_region given: kept */
	cfg_init(&c);
	cr_assert_eq(cfg_set(&c, "s3_region", "sa-east-1", 0, err, sizeof(err)), 0);
	cr_assert_eq(creds_configure(&c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.s3_region, "sa-east-1");
	cfg_free(&c);

	cfg_init(&c);
	c.s3_profile = strdup("cfgkeys");
	cr_assert_eq(creds_configure(&c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.s3_endpoint, "http://127.0.0.1:1");
	free(c.s3_endpoint);
	c.s3_endpoint = NULL;
	setenv("AWS_ENDPOINT_URL", "http://generic", 1);
	cr_assert_eq(creds_configure(&c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.s3_endpoint, "http://generic");
	free(c.s3_endpoint);
	c.s3_endpoint = NULL;
	setenv("AWS_ENDPOINT_URL_S3", "http://s3only", 1);
	cr_assert_eq(creds_configure(&c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.s3_endpoint, "http://s3only");
	cfg_free(&c);
}

/* Keys in a shared file are read again when the file changes: rotating a key needs no
 * remount. (The renewal thread looks every 5 seconds.) */
Test(chain, a_rotated_key_file_is_read_again, .init = setup, .fini = teardown, .timeout = 30)
{
	struct ferry_config c;
	struct creds *cr;
	struct creds_value v;
	unsigned gen, gen2;
	char p[128];
	cfg_init(&c);
	cr_assert_eq(creds_new(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(creds_start(cr), 0);
	cr_assert_eq(creds_get(cr, &v, &gen), 0);
	cr_assert_str_eq(v.access_key_id, "DEFID");
	creds_value_clear(&v);
	snprintf(p, sizeof(p), "%s/credentials", dir);
	write_file(p, "[default]\naws_access_key_id = ROTATEDID\n"
		      "aws_secret_access_key = ROTATEDSK\n");
	int seen = 0;
	for (int i = 0; i < 150 && !seen; i++) {
		usleep(100 * 1000);
		cr_assert_eq(creds_get(cr, &v, &gen2), 0);
		seen = strcmp(v.access_key_id, "ROTATEDID") == 0;
		creds_value_clear(&v);
	}
	cr_assert(seen, "the rotated key was not read within 15 s");
	cr_assert_neq(gen, gen2);
	creds_free(cr);
	cfg_free(&c);
}
