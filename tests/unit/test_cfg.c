/* Unit tests for cfg.c: option parsing, config files, validation and the credential chain. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cfg.h"
#include "base/util.h"

static char err[512];

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static char *tmpdir(void)
{
	static char dir[64];
	strcpy(dir, "/tmp/ferry-cfg.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

Test(cfg, defaults)
{
	struct ferry_config c;
	cfg_init(&c);
	cr_assert_str_eq(c.s3_region, "us-east-1");
	cr_assert_str_eq(c.s3_prefix, "");
	cr_assert_eq(c.file_mode, 0644);
	cr_assert_eq(c.dir_mode, 0755);
	cr_assert_eq(c.workers, 4);
	cr_assert_eq(c.rename_dir_limit, 10000);
	cr_assert_eq(c.revalidate, 30);
	cr_assert_eq(c.mirror, MIRROR_ASYNC);
	cr_assert_eq(c.migrate_on, MIGRATE_ON_OPEN);
	cfg_free(&c);
}

Test(cfg, values_are_parsed)
{
	struct ferry_config c;
	cfg_init(&c);
	cr_assert_eq(cfg_set(&c, "s3_prefix", "/data", 0, err, sizeof(err)), 0);
	cr_assert_str_eq(c.s3_prefix, "data/");
	cr_assert_eq(cfg_set(&c, "rate", "20M", 0, err, sizeof(err)), 0);
	cr_assert_eq(c.rate, 20ull << 20);
	cr_assert_eq(cfg_set(&c, "file_mode", "0600", 0, err, sizeof(err)), 0);
	cr_assert_eq(c.file_mode, 0600);
	cr_assert_eq(cfg_set(&c, "s3_path_style", "1", 0, err, sizeof(err)), 0);
	cr_assert_eq(c.s3_path_style, 1);
	cr_assert_eq(cfg_set(&c, "mirror", "off", 0, err, sizeof(err)), 0);
	cr_assert_eq(c.mirror, MIRROR_OFF);
	cr_assert_eq(cfg_set(&c, "log_level", "debug", 0, err, sizeof(err)), 0);
	cr_assert_eq(c.log_level, LOG_DEBUG);
	cr_assert_eq(cfg_set(&c, "nosuid", NULL, 0, err, sizeof(err)), 0,
		     "generic mount options pass");
	cfg_free(&c);
}

Test(cfg, bad_values_name_the_key)
{
	struct {
		const char *key, *value;
	} bad[] = { { "workers", "0" },      { "workers", "many" },
		    { "file_mode", "0999" }, { "s3_path_style", "maybe" },
		    { "mirror", "sync" },    { "rate", "fast" },
		    { "log", "file" },       { "log_level", "loud" },
		    { "uid", "-1" },         { "bogus_key", "1" },
		    { "s3_bucket", "" } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ferry_config c;
		cfg_init(&c);
		err[0] = '\0';
		cr_expect_eq(cfg_set(&c, bad[i].key, bad[i].value, 0, err, sizeof(err)), -EINVAL,
			     "%s=%s accepted", bad[i].key, bad[i].value);
		cr_expect(strstr(err, bad[i].key) != NULL, "error '%s' does not name %s", err,
			  bad[i].key);
		cr_expect(strchr(err, '\n') == NULL, "one line");
		cfg_free(&c);
	}
}

Test(cfg, secrets_are_refused_on_the_command_line)
{
	struct ferry_config c;
	cfg_init(&c);
	cr_assert_eq(cfg_set(&c, "s3_secret_access_key", "SECRETVALUE", 0, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "s3_secret_access_key") != NULL);
	cr_assert(strstr(err, "SECRETVALUE") == NULL, "the secret never appears in an error");
	cfg_free(&c);
}

Test(cfg, config_file_with_comments)
{
	char *d = tmpdir();
	char path[128];
	snprintf(path, sizeof(path), "%s/ferryfs.conf", d);
	write_file(path, "# a comment\n\ns3_bucket = logs   # trailing comment\n"
			 "nfs=nfs://10.0.0.1/export/app\n  s3_prefix = app\nworkers = 8\n", 0644);
	struct ferry_config c;
	cfg_init(&c);
	cr_assert_eq(cfg_load_file(&c, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.s3_bucket, "logs");
	cr_assert_str_eq(c.nfs, "nfs://10.0.0.1/export/app");
	cr_assert_str_eq(c.s3_prefix, "app/");
	cr_assert_eq(c.workers, 8);
	c.mountpoint = strdup("/mnt/app");
	cr_assert_eq(cfg_finish(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.s3_endpoint, "https://s3.us-east-1.amazonaws.com");
	cr_assert_str_eq(c.state_dir, "/var/lib/ferryfs/app");
	cfg_free(&c);

	write_file(path, "s3_bucket = logs\nthis line has no equals\n", 0644);
	cfg_init(&c);
	cr_assert_eq(cfg_load_file(&c, path, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, ":2:") != NULL, "error names the line: %s", err);
	cfg_free(&c);
	unlink(path);
	rmdir(d);
}

Test(cfg, a_readable_file_with_a_secret_is_refused)
{
	char *d = tmpdir();
	char path[128];
	snprintf(path, sizeof(path), "%s/secret.conf", d);
	write_file(path, "s3_access_key_id = AKID\ns3_secret_access_key = TOPSECRET\n", 0644);
	struct ferry_config c;
	cfg_init(&c);
	cr_assert_eq(cfg_load_file(&c, path, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "TOPSECRET") == NULL);
	cfg_free(&c);
	chmod(path, 0600);
	cfg_init(&c);
	cr_assert_eq(cfg_load_file(&c, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.s3_secret_access_key, "TOPSECRET");
	cfg_free(&c);
	unlink(path);
	rmdir(d);
}

/* Found by tests/fuzz/fuzz_cfg: a line without '=' was echoed whole into the error, so a
 * mistyped "s3_secret_access_key: SECRET" (or a wrapped secret) went to stderr and syslog. */
Test(cfg, a_line_without_equals_never_echoes_its_value)
{
	char *d = tmpdir();
	char path[128];
	snprintf(path, sizeof(path), "%s/typo.conf", d);
	const char *lines[] = { "s3_secret_access_key: Sup3rSECRET99\n",
				"s3_secret_access_key Sup3rSECRET99\n",
				"s3_bucket = b\nSup3rSECRET99\n" };
	for (size_t i = 0; i < 3; i++) {
		write_file(path, lines[i], 0600);
		struct ferry_config c;
		cfg_init(&c);
		err[0] = '\0';
		cr_assert_eq(cfg_load_file(&c, path, err, sizeof(err)), -EINVAL);
		cr_assert(strstr(err, "Sup3rSECRET99") == NULL, "the secret is in: %s", err);
		cr_assert(strstr(err, "expected 'key = value'") != NULL, "%s", err);
		if (i < 2)
			cr_assert(strstr(err, "'s3_secret_access_key'") != NULL,
				  "names the key: %s", err);
		cfg_free(&c);
	}
	unlink(path);
	rmdir(d);
}

Test(cfg, finish_requires_bucket_and_nfs)
{
	struct ferry_config c;
	cfg_init(&c);
	cr_assert_eq(cfg_finish(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "s3_bucket") != NULL);
	cfg_set(&c, "s3_bucket", "b", 0, err, sizeof(err));
	cr_assert_eq(cfg_finish(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "'nfs'") != NULL);
	cfg_set(&c, "nfs", "ftp://x", 0, err, sizeof(err));
	cr_assert_eq(cfg_finish(&c, err, sizeof(err)), -EINVAL);
	cfg_set(&c, "nfs", "/srv/export", 0, err, sizeof(err));
	cfg_set(&c, "s3_endpoint", "127.0.0.1:9000", 0, err, sizeof(err));
	cr_assert_eq(cfg_finish(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "s3_endpoint") != NULL);
	cfg_set(&c, "s3_endpoint", "http://127.0.0.1:9000/", 0, err, sizeof(err));
	cr_assert_eq(cfg_finish(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.s3_endpoint, "http://127.0.0.1:9000");
	cfg_free(&c);
}

Test(cfg, the_saved_configuration_reads_back_without_secrets)
{
	struct ferry_config c, back;
	struct buf b = { 0 };
	cfg_init(&c);
	cr_assert_eq(cfg_set(&c, "s3_bucket", "bkt", 0, err, sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "s3_prefix", "data", 0, err, sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "nfs", "nfs://h/export", 0, err, sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "s3_timeout", "7", 0, err, sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "file_mode", "0600", 0, err, sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "s3_access_key_id", "AKIDSAVED", 1, err, sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "s3_secret_access_key", "SECRETSAVED", 1, err, sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "workers", "9", 0, err, sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "s3_sse_c_key_file", "/etc/ferryfs/sse-c.key", 0, err,
			     sizeof(err)), 0);
	cr_assert_eq(cfg_set(&c, "s3_request_payer", "1", 0, err, sizeof(err)), 0);
	cr_assert_eq(cfg_format_saved(&c, &b), 0);
	cr_assert_null(strstr(b.data, "SAVED"), "no credential in:\n%s", b.data);
	cr_assert_null(strstr(b.data, "workers"), "a key of the mount alone is not saved");
	char *dir = tmpdir(), path[128];
	snprintf(path, sizeof(path), "%s/mount.conf", dir);
	write_file(path, b.data, 0600);
	cfg_init(&back);
	cr_assert_eq(cfg_load_file(&back, path, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(back.s3_bucket, "bkt");
	cr_assert_str_eq(back.s3_prefix, "data/");
	cr_assert_str_eq(back.nfs, "nfs://h/export");
	cr_assert_eq(back.s3_timeout, 7);
	cr_assert_eq(back.file_mode, 0600);
	cr_assert_eq(back.s3_connections, c.s3_connections);
	cr_assert_eq(back.uid, c.uid);
	/* sync-back --state reaches an encrypted or Requester Pays bucket as the mount did */
	cr_assert_str_eq(back.s3_sse_c_key_file, "/etc/ferryfs/sse-c.key");
	cr_assert_eq(back.s3_request_payer, 1);
	unlink(path);
	rmdir(dir);
	buf_free(&b);
	cfg_free(&c);
	cfg_free(&back);
}
