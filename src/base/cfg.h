/* cfg.h - the mount's configuration: every key of the contract (spec section 9),
 * parsed from a config file (`key = value`, `#` comments) and from -o KEY=VALUE,
 * validated once, then read-only for the life of the process (no lock needed). */
#ifndef FERRY_CFG_H
#define FERRY_CFG_H

#include <stdint.h>
#include <sys/types.h>

#include "base/log.h"

enum migrate_on { MIGRATE_ON_OPEN, MIGRATE_ON_NEVER };
enum mirror_mode { MIRROR_ASYNC, MIRROR_OFF };

struct ferry_config {
	/* S3, the old store */
	char *s3_endpoint;    /* URL without trailing '/'; derived from the region when unset
			       * (after creds_configure applied AWS_ENDPOINT_URL_S3 & co) */
	char *s3_bucket;
	char *s3_prefix;      /* "" or ending in '/' */
	char *s3_region;      /* "us-east-1" unless set, or found by creds_configure (s3/creds.h) */
	int s3_region_set;    /* s3_region was given (config file or -o), not the default */
	int s3_path_style;
	char *s3_profile;
	char *s3_ca_file;
	int s3_insecure_tls;
	char *s3_access_key_id;      /* only from a config file readable by its owner alone */
	char *s3_secret_access_key;
	unsigned s3_connections;     /* curl handles in the pool (default 16) */
	unsigned s3_retries;         /* retries of an idempotent request (default 5) */
	unsigned s3_timeout;         /* seconds: connect and low-speed timeout (default 30) */
	uint64_t s3_part_size;       /* multipart part size in bytes (default 16 MiB) */
	uint64_t s3_multipart_threshold; /* bodies this large use multipart (default 64 MiB) */
	char *s3_sse;                /* server-side encryption of new objects: AES256, aws:kms */
	char *s3_sse_kms_key_id;     /* with aws:kms: the key (default: the bucket's) */
	char *s3_sse_c_key_file;     /* SSE-C: the customer key's file (owner-only; s3/sse.h) */
	int s3_request_payer;        /* Requester Pays: x-amz-request-payer on every request */
	uint64_t readahead_max;      /* cap on all read-ahead memory, bytes (default 256 MiB) */
	uint64_t kernel_readahead;   /* the kernel's read-ahead on the mount (1 MiB; 0: its own) */

	/* NFS, the new store */
	char *nfs;            /* nfs://host/export/dir?... or an absolute local path */
	unsigned nfs_connections;    /* nfs_contexts in the pool (default 8) */

	/* the mount */
	char *state_dir;
	char *mountpoint;     /* absolute */
	char *name;           /* the mount's name (basename of the mountpoint unless set) */
	unsigned workers;
	enum migrate_on migrate_on;
	uint64_t rate;        /* bytes/s for the crawl, 0 = unlimited */
	uint64_t rate_files;  /* files/s for the crawl, 0 = unlimited */
	enum mirror_mode mirror;
	unsigned revalidate;  /* seconds: an open re-checks a file checked longer ago (0: off) */
	unsigned revalidate_sweep;   /* seconds between the fleet's shared sweeps (0: none) */
	uint64_t rename_dir_limit;
	mode_t file_mode;
	mode_t dir_mode;
	uid_t uid;
	gid_t gid;
	int allow_other;
	int xattr_list;
	enum log_target log;
	int log_level;
};

/* Fill every key with its default. */
void cfg_init(struct ferry_config *cfg);
void cfg_free(struct ferry_config *cfg);

/* Set one key. On a bad key or value returns -EINVAL and writes one line naming the key
 * into err (errlen bytes). `from_file` is 1 for keys read from a config file (the only
 * place secrets are accepted). */
int cfg_set(struct ferry_config *cfg, const char *key, const char *value, int from_file,
	    char *err, size_t errlen);

/* Read a config file. -EINVAL with err naming the line/key, -errno if unreadable.
 * A file holding s3_secret_access_key that group or others can read is refused (-EPERM). */
int cfg_load_file(struct ferry_config *cfg, const char *path, char *err, size_t errlen);

/* Check the whole configuration after every source was applied (required keys present,
 * derived values filled in). -EINVAL with err naming the key. */
int cfg_finish(struct ferry_config *cfg, char *err, size_t errlen);

/* Append "key = value" lines for the keys that say how to reach the stores (endpoints,
 * bucket, prefix, export, pools, timeouts, ownership and modes), as cfg_load_file reads
 * them back: `ferryctl sync-back --state` reaches the stores from them with the mount
 * down. Never a credential. 0 / -ENOMEM. */
struct buf;
int cfg_format_saved(const struct ferry_config *cfg, struct buf *out);

#endif
