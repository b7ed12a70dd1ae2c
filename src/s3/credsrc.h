/* credsrc.h - the sources of AWS credentials, each able to fetch a fresh set: fixed keys
 * (the environment, the ferryfs config file), a shared credentials/config file profile
 * (read again at each fetch), STS AssumeRole (signed with another source's credentials),
 * STS AssumeRoleWithWebIdentity (the token file read again at each fetch), a
 * credential_process (run without a shell), the container credentials endpoint and the EC2
 * instance metadata service (IMDSv2 only). The chain that picks one is in creds.c.
 *
 * Every fetch makes its own curl easy handle (never shared) and may block up to the
 * source's timeout. A credsrc is immutable once built; fetches of one credsrc must not run
 * concurrently (creds.c serializes them). Errors name the source and the cause, never a
 * secret. */
#ifndef FERRY_S3_CREDSRC_H
#define FERRY_S3_CREDSRC_H

#include <stddef.h>
#include <time.h>

/* One set of credentials. The strings are malloc'd; creds_value_clear wipes them. */
struct creds_value {
	char *access_key_id;
	char *secret_access_key;
	char *session_token;  /* NULL when none */
	time_t expiration;    /* 0: does not expire */
};
void creds_value_clear(struct creds_value *v);
/* Deep copy. 0 / -ENOMEM (dst then empty). */
int creds_value_copy(struct creds_value *dst, const struct creds_value *src);

enum credsrc_kind {
	CREDSRC_FIXED,      /* keys known at start: the environment, the ferryfs config file */
	CREDSRC_FILE,       /* aws_access_key_id/... of a profile in a shared file */
	CREDSRC_ROLE,       /* STS AssumeRole with the credentials of ->source */
	CREDSRC_WEBID,      /* STS AssumeRoleWithWebIdentity */
	CREDSRC_PROCESS,    /* credential_process */
	CREDSRC_CONTAINER,  /* ECS / EKS Pod Identity endpoint */
	CREDSRC_IMDS,       /* EC2 instance metadata, IMDSv2 */
};

struct credsrc {
	enum credsrc_kind kind;
	char name[160];          /* for messages: "environment", "profile dev (role ...)", ... */
	long timeout;            /* seconds per HTTP request or for the process */
	struct creds_value fixed;         /* CREDSRC_FIXED */
	char *path, *profile;             /* CREDSRC_FILE: the file and the profile */
	int is_config;                    /* CREDSRC_FILE: the config file's section naming */
	char *role_arn, *session_name, *external_id, *duration; /* ROLE, WEBID */
	char *token_file;                 /* WEBID */
	char *sts_url, *region;           /* ROLE, WEBID: STS endpoint URL and signing region */
	struct credsrc *source;           /* ROLE */
	char *command;                    /* PROCESS */
	char *url, *auth_token, *auth_token_file; /* CONTAINER */
	char *endpoint;                   /* IMDS: "http://169.254.169.254" or the override */
};

/* A new source of kind with its name; everything else zero. NULL on ENOMEM. */
struct credsrc *credsrc_new(enum credsrc_kind kind, const char *name);
void credsrc_free(struct credsrc *s);

/* Fetch credentials. 0, or -errno with a one-line cause in err: -ENOENT (nothing there:
 * a profile without keys, no IMDS role), -EACCES (refused: STS AccessDenied, HTTP 401/403),
 * -EPROTO (a malformed answer), -ETIMEDOUT / -ECONNREFUSED / -EHOSTUNREACH / -EIO (could
 * not ask), -ENOMEM. */
int credsrc_fetch(const struct credsrc *s, struct creds_value *out, char *err, size_t errlen);

/* The parsers, exposed for the unit tests and the fuzzer. Both are strict: 0, or -EPROTO
 * with the cause in err (never a value from the document). */
/* A credentials JSON document: process = 1 for credential_process's (Version 1,
 * SessionToken), 0 for the container/IMDS ones (Token; Code, when present, "Success"). */
int credsrc_parse_json(const char *text, size_t len, int process, struct creds_value *out,
		       char *err, size_t errlen);
/* An STS answer (s3xml_parse_sts): -EACCES for an ErrorResponse (its code in err). */
int credsrc_parse_sts(const char *xml, size_t len, struct creds_value *out, char *err,
		      size_t errlen);
/* Split a credential_process command line into argv the way botocore does (blanks
 * separate; '...' and "..." quote; \ escapes outside single quotes). *argv is one malloc'd
 * block (free it). 0 / -EINVAL (unterminated quote, empty) / -ENOMEM. */
int credsrc_split_command(const char *cmd, char ***argv);
/* The container endpoint's URL from the environment's relative or full URI: "http://
 * 169.254.170.2" + relative, or the full URI when it is https or names a loopback,
 * 169.254.170.2, 169.254.170.23 or fd00:ec2::23 address. 0 / -EINVAL (another host:
 * the authorization token must not go there) / -ENOMEM. */
int credsrc_container_url(const char *relative, const char *full, char **url);

#endif
