/* awsini.h - the AWS shared config and credentials files (~/.aws/config,
 * ~/.aws/credentials), read the way the AWS CLI and botocore read them: `[name]` sections
 * (in the config file `[profile name]`, and `[default]`), `key = value` lines, `#` and `;`
 * comment lines, indented lines continuing a nested setting (such as `s3 =`) ignored.
 * Sections of other kinds (`[sso-session x]`, `[services x]`) are skipped. A later key
 * in the same profile wins, like botocore. Values may be secrets: the structure is wiped
 * when freed. Read-only after awsini_parse, so any thread may read it. */
#ifndef FERRY_S3_AWSINI_H
#define FERRY_S3_AWSINI_H

#include <stddef.h>

struct awsini;

/* Parse text[0..len). is_config: the config file's section naming. 0 / -ENOMEM / -EINVAL
 * (a NUL byte, a line longer than 64 KiB, a section header without its ']'). On -EINVAL,
 * *line gets the 1-based line number at fault. */
int awsini_parse(const char *text, size_t len, int is_config, struct awsini **out,
		 unsigned *line);

/* Read and parse a file. -ENOENT when it does not exist, other -errno as awsini_parse or
 * from reading (a file over 1 MiB: -EFBIG). */
int awsini_load(const char *path, int is_config, struct awsini **out, unsigned *line);

/* 1 when the profile has a section, 0 otherwise. */
int awsini_has_profile(const struct awsini *f, const char *profile);

/* The value of key in profile, NULL when absent. Valid until awsini_free. */
const char *awsini_get(const struct awsini *f, const char *profile, const char *key);

void awsini_free(struct awsini *f);

#endif
