/* creds.h - the AWS credentials of a mount: found once through the AWS SDKs' default chain,
 * then kept fresh for as long as the mount lives.
 *
 * The chain, in botocore's order (the first source that is configured wins; its failure
 * is an error, not a reason to try the next one, except for the instance metadata service,
 * which is only probed):
 *   1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN);
 *   2. the profile's role_arn with source_profile or credential_source: STS AssumeRole;
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN (AWS_ROLE_SESSION_NAME),
 *      or the profile's web_identity_token_file + role_arn: STS AssumeRoleWithWebIdentity;
 *   4. the profile's keys in the shared credentials file;
 *   5. the profile's credential_process;
 *   6. the profile's keys in the shared config file;
 *   7. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI, with
 *      AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN;
 *   8. the EC2 instance metadata service, IMDSv2 only (unless AWS_EC2_METADATA_DISABLED);
 *   9. s3_access_key_id / s3_secret_access_key of the ferryfs config file.
 * The profile is s3_profile, else AWS_PROFILE, else "default"; the files AWS_CONFIG_FILE
 * and AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/config and ~/.aws/credentials. STS is
 * AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else https://sts.REGION.amazonaws.com.
 *
 * Temporary credentials are renewed by a background thread well before they expire (half
 * their lifetime, at most 15 minutes ahead); a request never gets credentials that expire
 * within the margin (a quarter of their lifetime, at most 5 minutes) while fresher ones can
 * be had. A failed renewal keeps the current credentials until they expire, is retried
 * with backoff (1 s doubling to 60 s), logged and counted (credential_errors); a renewal
 * counts credential_refreshes. Keys read from a shared file are read again when the file
 * changes (checked every 5 s), and every source is asked again on SIGHUP (creds_sighup).
 *
 * Thread safety: every function may be called from any thread. The lock of struct creds
 * (see creds.c) is never held across a fetch; fetches are serialized by a second lock. */
#ifndef FERRY_S3_CREDS_H
#define FERRY_S3_CREDS_H

#include <stddef.h>

#include "s3/credsrc.h"

struct ferry_config;
struct creds;

/* AWS's configuration conventions, applied to cfg before cfg_finish: the region from
 * AWS_REGION, AWS_DEFAULT_REGION or the profile's `region` when s3_region was not given;
 * the endpoint from AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or the profile's `endpoint_url`
 * when s3_endpoint was not given. An s3_profile that no file holds is an error naming it.
 * No network. 0 / -EINVAL (err says why) / -ENOMEM. */
int creds_configure(struct ferry_config *cfg, char *err, size_t errlen);

/* Find the source (the chain above) and fetch the first credentials. 0; -ENOENT when no
 * source is configured; another -errno when the source that won failed. err gets the
 * cause, naming the source, never a secret. No thread is started. */
int creds_new(const struct ferry_config *cfg, struct creds **out, char *err, size_t errlen);

/* Start the background renewal (after daemonizing: no thread may cross a fork). A source
 * that never changes starts nothing. 0 / -errno. */
int creds_start(struct creds *c);

/* Stop the renewal thread and free everything (wiping the secrets). */
void creds_free(struct creds *c);

/* Which source won, for messages: "environment", "web identity (role ARN)", ... */
const char *creds_source(const struct creds *c);

/* A consistent copy of the credentials to sign one request with (free it with
 * creds_value_clear), and their generation in *gen (for creds_rejected). Renews
 * synchronously when the background renewal has not yet managed to. 0, or -EACCES when
 * the credentials have expired and cannot be renewed, or -ENOMEM. */
int creds_get(struct creds *c, struct creds_value *out, unsigned *gen);

/* S3 refused the credentials of generation gen (ExpiredToken, InvalidToken,
 * RequestExpired, InvalidAccessKeyId; or a 400/403 without a body, as HEAD gets): renew
 * them now, once for all the requests that saw the same generation, unless they were
 * fetched less than min_age seconds ago (so that a real AccessDenied on HEAD does not
 * renew at every request). 0 when newer credentials are there (retry), -errno otherwise. */
int creds_rejected(struct creds *c, unsigned gen, unsigned min_age);

/* Fetch the credentials again now (whatever the source). */
void creds_reload(struct creds *c);

/* A SIGHUP handler (async-signal-safe): every renewal thread of the process fetches its
 * credentials again within 5 seconds. */
void creds_sighup(int sig);

#endif
