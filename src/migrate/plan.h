/* plan.h - what a migration will take, estimated from a bucket's keys before anything is
 * mounted (`ferryctl plan`). Pure logic: the caller feeds every key in ascending byte order
 * (as ListObjectsV2 returns them) and reads the tallies and the cost model's figures.
 *
 * Classification follows the naming rules of the mount (spec section 2): a key that is not a
 * POSIX path is unreachable; an object that is also a directory (keys below "name/") is
 * shadowed; a key ending in '/' is a directory marker; an object in a Glacier storage class
 * is archived (it must be restored before it can be read). Memory is bounded by the longest
 * key, not by the number of keys. */
#ifndef FERRY_PLAN_H
#define FERRY_PLAN_H

#include <stddef.h>
#include <stdint.h>

enum { PLAN_CLASSES = 5 };

/* Size classes: < 16 KiB, < 1 MiB, < 16 MiB, < 64 MiB, >= 64 MiB. */
extern const uint64_t plan_class_limit[PLAN_CLASSES - 1];
extern const char *const plan_class_name[PLAN_CLASSES];

struct plan_tally {
	uint64_t objects, bytes;                 /* every key fed */
	uint64_t files, file_bytes;              /* what the mount shows as files */
	uint64_t markers;                        /* "dir/" objects */
	uint64_t dirs;                           /* directories the tree holds */
	uint64_t unreachable, unreachable_bytes;
	uint64_t shadowed, shadowed_bytes;
	uint64_t archived, archived_bytes;       /* among the files */
	uint64_t class_files[PLAN_CLASSES], class_bytes[PLAN_CLASSES];
	uint64_t nfs_bytes;                      /* files rounded up to 4 KiB blocks, + dirs */
	uint64_t multipart_files;                /* written back by multipart upload */
};

struct plan;

/* A planner for the keys under prefix ("" or ending in '/'); multipart_threshold decides
 * which files write-back sends in parts. 0 / -ENOMEM. */
int plan_new(const char *prefix, uint64_t multipart_threshold, struct plan **out);
void plan_free(struct plan *p);

/* Feed one key (NUL-terminated, the full S3 key) with its size and storage class ("" or
 * NULL: STANDARD). Keys must come in ascending strcmp order; one out of order is -EINVAL
 * (and not counted). Keys outside the prefix are ignored. 0 / -EINVAL / -ENOMEM. */
int plan_add(struct plan *p, const char *key, uint64_t size, const char *storage_class);

/* Close the last pending key and copy the tallies into out. */
void plan_finish(struct plan *p, struct plan_tally *out);

/* 1 when an object of this storage class must be restored before a GET. */
int plan_class_archived(const char *storage_class);

/* The cost model's inputs. Rates are per host; 0 means "use the measured default". */
struct plan_params {
	unsigned hosts;               /* hosts sharing the crawl (>= 1) */
	uint64_t rate;                /* bytes/s per host */
	uint64_t rate_files;          /* files/s per host */
	unsigned revalidate;          /* seconds between an open's re-checks (0: off) */
	double price_list;            /* $ per 1,000 LIST/PUT/COPY/POST requests */
	double price_get;             /* $ per 1,000 GET/HEAD requests */
	double ledger_record_bytes;   /* ledger bytes per recorded file */
};

/* The figures AWS lists for S3 Standard (us-east-1) and the ledger's measured record size;
 * hosts 1; rates 0 (the measured throughput of one host). */
void plan_params_default(struct plan_params *pp);

struct plan_estimate {
	double crawl_s;               /* wall time of the crawl shared by the hosts */
	uint64_t rate, rate_files;    /* the per-host rates used */
	uint64_t get_requests;        /* GETs of the migration (one per reachable file) */
	uint64_t list_requests;       /* LISTs of the crawl (a page per 1,000 keys a directory) */
	double crawl_cost;            /* $ of the crawl's requests */
	uint64_t ledger_bytes;        /* per host, if that host records every file */
};

/* Measured single-host throughput of the migrator, used where a rate is 0. */
#define PLAN_DEFAULT_RATE       (100ull << 20)   /* bytes/s */
#define PLAN_DEFAULT_RATE_FILES 300ull           /* files/s */

void plan_estimate(const struct plan_tally *t, const struct plan_params *pp,
		   struct plan_estimate *out);

#endif
