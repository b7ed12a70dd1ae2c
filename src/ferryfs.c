/* ferryfs.c - the daemon's entry point: parse `ferryfs [CONFIG] MOUNTPOINT [-o KEY=VALUE,...]
 * [-f] [-d]`, check the configuration and both stores, mount, serve, unmount.
 *
 * Exit codes: 0 after a clean unmount, 1 when a store is unreachable or the mount fails
 * (nothing is left mounted), 2 for bad configuration (one line naming the key). */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "base/cfg.h"
#include "migrate/fleet.h"
#include "fuse/fs.h"
#include "ledger/ledger.h"
#include "base/log.h"
#include "migrate/migrate.h"
#include "writeback/mirror.h"
#include "view/readahead.h"
#include "base/util.h"
#include "s3/creds.h"

#ifndef FUSE_SUPER_MAGIC
#define FUSE_SUPER_MAGIC 0x65735546
#endif

static void usage(FILE *out)
{
	fprintf(out,
		"usage: ferryfs [CONFIG] MOUNTPOINT [-o KEY=VALUE,...] [-f] [-d]\n"
		"\n"
		"Mount one POSIX tree over an S3 bucket (the old store) and an NFS export (the "
		"new\n"
		"store): reads fall through NFS then S3. Options (also `key = value` in CONFIG):\n"
		"  s3_endpoint s3_bucket s3_prefix s3_region s3_path_style s3_profile s3_ca_file\n"
		"  s3_insecure_tls nfs state_dir workers migrate_on rate rate_files mirror "
		"revalidate\n"
		"  rename_dir_limit file_mode dir_mode uid gid allow_other xattr_list log "
		"log_level\n"
		"  -f  stay in the foreground    -d  foreground with FUSE debugging\n"
		"ferryfs --show-credentials-source [CONFIG] [-o KEY=VALUE,...]: say which AWS\n"
		"  credentials source wins (never the secret), the region and the endpoint.\n"
		"See ferryfs(8).\n");
}

/* FUSE mount options passed through unchanged. */
static int fuse_passthrough(const char *item)
{
	static const char *const exact[] = { "ro", "auto_unmount", NULL };
	static const char *const prefixed[] = { "fsname=", "subtype=", "max_threads=",
						"max_idle_threads=", NULL };
	for (int i = 0; exact[i]; i++)
		if (!strcmp(item, exact[i]))
			return 1;
	for (int i = 0; prefixed[i]; i++)
		if (!strncmp(item, prefixed[i], strlen(prefixed[i])))
			return 1;
	return 0;
}

struct cmdline {
	const char *config;
	const char *mountpoint;
	int foreground;
	int debug;
	int show_creds;       /* --show-credentials-source */
	char **opts;          /* our KEY[=VALUE] items from -o, in order */
	size_t nopts;
	struct buf fuse_opts; /* comma-separated FUSE options */
};

/* Split one -o argument on commas ("\," is a literal comma). */
static int add_opts(struct cmdline *cl, const char *arg)
{
	struct buf item = { 0 };
	int rc = 0;
	for (const char *p = arg;; p++) {
		if (*p == '\\' && p[1] == ',') {
			rc = buf_append(&item, ",", 1);
			p++;
		} else if (*p == ',' || *p == '\0') {
			if (item.len) {
				if (fuse_passthrough(item.data)) {
					if (cl->fuse_opts.len)
						rc = buf_puts(&cl->fuse_opts, ",");
					rc = rc ?: buf_puts(&cl->fuse_opts, item.data);
				} else {
					char **o = realloc(cl->opts, (cl->nopts + 1) * sizeof(*o));
					if (!o)
						rc = -ENOMEM;
					else {
						cl->opts = o;
						cl->opts[cl->nopts] = strdup(item.data);
						rc = cl->opts[cl->nopts] ? 0 : -ENOMEM;
						cl->nopts += !rc;
					}
				}
			}
			buf_reset(&item);
			if (!*p)
				break;
		} else {
			rc = buf_append(&item, p, 1);
		}
		if (rc)
			break;
	}
	buf_free_secure(&item);
	return rc;
}

static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
	const char *pos[3];
	int npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			printf("ferryfs %s\n", PACKAGE_VERSION);
			exit(0);
		} else if (!strcmp(a, "--show-credentials-source")) {
			cl->show_creds = 1;
		} else if (!strcmp(a, "-f")) {
			cl->foreground = 1;
		} else if (!strcmp(a, "-d")) {
			cl->foreground = cl->debug = 1;
		} else if (!strcmp(a, "-o")) {
			if (++i == argc) {
				fprintf(stderr, "ferryfs: -o needs an argument\n");
				return -EINVAL;
			}
			if (add_opts(cl, argv[i]))
				return -ENOMEM;
		} else if (!strncmp(a, "-o", 2)) {
			if (add_opts(cl, a + 2))
				return -ENOMEM;
		} else if (a[0] == '-') {
			fprintf(stderr, "ferryfs: unknown flag '%s' (see ferryfs -h)\n", a);
			return -EINVAL;
		} else {
			if (npos == 2) {
				fprintf(stderr, "ferryfs: too many arguments (see ferryfs -h)\n");
				return -EINVAL;
			}
			pos[npos++] = a;
		}
	}
	if (cl->show_creds) {
		if (npos > 1) {
			fprintf(stderr,
				"ferryfs: --show-credentials-source takes at most a CONFIG\n");
			return -EINVAL;
		}
		cl->config = npos ? pos[0] : NULL;
		return 0;
	}
	if (npos == 0) {
		usage(stderr);
		return -EINVAL;
	}
	cl->config = npos == 2 ? pos[0] : NULL;
	cl->mountpoint = pos[npos - 1];
	return 0;
}

/* The ledger must live on local disk (LMDB over NFS or FUSE corrupts it). */
static int check_state_dir(const char *dir, char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			goto fail_errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		goto fail_errno;
	struct statfs sf;
	if (statfs(dir, &sf) < 0)
		goto fail_errno;
	if ((unsigned long)sf.f_type == NFS_SUPER_MAGIC ||
	    (unsigned long)sf.f_type == FUSE_SUPER_MAGIC ||
	    (unsigned long)sf.f_type == SMB_SUPER_MAGIC ||
	    (unsigned long)sf.f_type == 0xff534d42ul /* cifs */) {
		snprintf(err, errlen,
			 "option 'state_dir': %s is not on local disk (the ledger must never "
			 "live on NFS, SMB or FUSE)",
			 dir);
		return -EINVAL;
	}
	if (access(dir, W_OK) < 0)
		goto fail_errno;
	return 0;
fail_errno:
	snprintf(err, errlen, "option 'state_dir': %s: %s", dir, strerror(errno));
	return -EINVAL;
}

/* --show-credentials-source: resolve the chain as a mount would, print what won. Exit
 * status: 0 found, 1 the source that won failed or none, 2 bad configuration. */
static int show_credentials(struct ferry_config *cfg)
{
	char err[512] = "";
	struct creds *c = NULL;
	if (creds_configure(cfg, err, sizeof(err))) {
		fprintf(stderr, "ferryfs: %s\n", err);
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	int rc = creds_new(cfg, &c, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "ferryfs: %s\n", err);
		curl_global_cleanup();
		return 1;
	}
	struct creds_value v;
	unsigned gen;
	printf("credentials: %s\n", creds_source(c));
	if (creds_get(c, &v, &gen) == 0) {
		char when[21] = "never";
		if (v.expiration)
			util_format_iso8601(v.expiration, when);
		size_t n = strlen(v.access_key_id);
		/* the key id's last 4 characters, as `aws configure list` shows them */
		printf("access key: ****%s\ntemporary: %s\nexpires: %s\n",
		       n > 4 ? v.access_key_id + n - 4 : "", v.session_token ? "yes" : "no", when);
		creds_value_clear(&v);
	}
	printf("region: %s\n", cfg->s3_region ? cfg->s3_region : "us-east-1");
	if (cfg->s3_endpoint)
		printf("endpoint: %s\n", cfg->s3_endpoint);
	creds_free(c);
	curl_global_cleanup();
	return 0;
}

/* Create both stores; with probe, check that each answers. 0, or -errno with the cause
 * logged (exit status 1). */
static int open_stores(struct ferry *fy, int probe)
{
	int rc = store_s3_new(fy->cfg, &fy->s3);
	if (rc) {
		log_err("cannot set up the S3 client for %s: %s", fy->cfg->s3_endpoint,
			strerror(-rc));
		return rc;
	}
	rc = store_new_nfs_side(fy->cfg, &fy->nfs);
	if (rc) {
		log_err("cannot reach the new store %s: %s", fy->cfg->nfs, strerror(-rc));
		return rc;
	}
	if (probe) {
		rc = store_probe(fy->s3);
		if (rc) {
			log_err("cannot reach S3 bucket '%s' at %s: %s", fy->cfg->s3_bucket,
				fy->cfg->s3_endpoint, strerror(-rc));
			return rc;
		}
		rc = store_probe(fy->nfs);
		if (rc) {
			log_err("cannot reach the new store %s: %s", fy->cfg->nfs, strerror(-rc));
			return rc;
		}
	}
	fy->route.cfg = fy->cfg;
	fy->route.s3 = fy->s3;
	fy->route.nfs = fy->nfs;
	return 0;
}

/* A peer that closes a socket must fail our send, not end the daemon: SIGPIPE is ignored
 * for the process's whole life. curl and libnfs pass MSG_NOSIGNAL, but a TLS library's
 * close_notify at a connection's cleanup need not. libfuse ignores it while its handlers
 * are installed and puts back the default when they are removed, before the stores and
 * their connections are shut down: so this runs again then. */
static void ignore_sigpipe(void)
{
	struct sigaction sa = { .sa_handler = SIG_IGN };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

static void close_stores(struct ferry *fy)
{
	store_destroy(fy->s3);
	store_destroy(fy->nfs);
	fy->s3 = fy->nfs = NULL;
}

int main(int argc, char **argv)
{
	struct cmdline cl = { 0 };
	struct ferry_config cfg;
	struct ferry fy = { .cfg = &cfg };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse *fuse = NULL;
	struct fuse_loop_config *loop = NULL;
	char err[512] = "";
	char mnt[PATH_MAX];
	int status = 2, rc;

	ignore_sigpipe();
	cfg_init(&cfg);
	if (parse_cmdline(argc, argv, &cl))
		goto out_cfg;
	if (cl.config && (rc = cfg_load_file(&cfg, cl.config, err, sizeof(err)))) {
		fprintf(stderr, "ferryfs: %s\n", err);
		goto out_cfg;
	}
	for (size_t i = 0; i < cl.nopts; i++) {
		char *eq = strchr(cl.opts[i], '=');
		if (eq)
			*eq = '\0';
		if (cfg_set(&cfg, cl.opts[i], eq ? eq + 1 : NULL, 0, err, sizeof(err))) {
			fprintf(stderr, "ferryfs: %s\n", err);
			goto out_cfg;
		}
	}
	if (cl.show_creds) {
		log_init(LOG_TO_STDERR, cfg.log_level, "ferryfs");
		status = show_credentials(&cfg);
		goto out_cfg;
	}
	if (!realpath(cl.mountpoint, mnt)) {
		fprintf(stderr, "ferryfs: mountpoint %s: %s\n", cl.mountpoint, strerror(errno));
		goto out_cfg;
	}
	cfg.mountpoint = strdup(mnt);
	if (!cfg.mountpoint || creds_configure(&cfg, err, sizeof(err)) ||
	    cfg_finish(&cfg, err, sizeof(err)) ||
	    check_state_dir(cfg.state_dir, err, sizeof(err))) {
		fprintf(stderr, "ferryfs: %s\n", err[0] ? err : strerror(ENOMEM));
		goto out_cfg;
	}

	/* From here on a failure is the environment's, not the configuration's: exit 1. */
	status = 1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "ferryfs: cannot initialise libcurl\n");
		goto out_cfg;
	}
	/* Probe both stores now, while errors still reach the terminal; the clients are then
	 * made again after daemonizing, so no connection or lock crosses the fork. */
	log_init(LOG_TO_STDERR, cfg.log_level, "ferryfs");
	if (open_stores(&fy, 1)) {
		close_stores(&fy);
		goto out_curl;
	}
	close_stores(&fy);
	/* Open the ledger once now, to report a busy, newer or unusable one on the terminal,
	 * and close it: LMDB must not cross the fork. It is opened again after daemonizing. */
	if ((rc = ledger_open(cfg.state_dir, LEDGER_CREATE, &fy.ledger))) {
		log_err("cannot open the ledger in %s: %s", cfg.state_dir,
			rc == -EBUSY ? "another ferryfs uses this state_dir" : strerror(-rc));
		goto out_curl;
	}
	ledger_close(fy.ledger);
	fy.ledger = NULL;
	log_init(cfg.log, cfg.log_level, "ferryfs");

	struct buf fo = { 0 };
	rc = buf_printf(&fo, "-ofsname=ferryfs:%s,subtype=ferryfs,default_permissions",
			cfg.s3_bucket);
	if (!rc && cfg.allow_other)
		rc = buf_puts(&fo, ",allow_other");
	if (!rc && cl.fuse_opts.len)
		rc = buf_printf(&fo, ",%s", cl.fuse_opts.data);
	if (rc || fuse_opt_add_arg(&args, argv[0]) || fuse_opt_add_arg(&args, fo.data) ||
	    (cl.debug && fuse_opt_add_arg(&args, "-d"))) {
		buf_free(&fo);
		goto out_curl;
	}
	buf_free(&fo);

	fuse = fuse_new(&args, fs_operations(), sizeof(struct fuse_operations), &fy);
	if (!fuse) {
		fprintf(stderr, "ferryfs: cannot set up FUSE\n");
		goto out_curl;
	}
	if (fuse_mount(fuse, cfg.mountpoint)) {
		fprintf(stderr, "ferryfs: cannot mount on %s\n", cfg.mountpoint);
		goto out_fuse;
	}
	if (fuse_daemonize(cl.foreground)) {
		log_err("cannot daemonize");
		goto out_unmount;
	}
	if (open_stores(&fy, 0)) {
		log_err("cannot set up the stores after daemonizing");
		goto out_stores;
	}
	if ((rc = ledger_open(cfg.state_dir, LEDGER_CREATE, &fy.ledger))) {
		log_err("cannot open the ledger in %s: %s", cfg.state_dir, strerror(-rc));
		goto out_stores;
	}
	fy.route.ledger = fy.ledger;
	if ((rc = mig_start(&fy))) {
		log_err("cannot start the migrator: %s", strerror(-rc));
		goto out_stores;
	}
	if ((rc = fleet_start(&fy))) {
		log_err("cannot start revalidation: %s", strerror(-rc));
		goto out_stores;
	}
	if ((rc = mirror_start(&fy))) {
		log_err("cannot start the write-back to S3: %s", strerror(-rc));
		goto out_stores;
	}
	fy.started = util_now_s();
	clock_gettime(CLOCK_REALTIME, &fy.route.mount_time);
	if (fuse_set_signal_handlers(fuse_get_session(fuse))) {
		log_err("cannot install signal handlers");
		goto out_stores;
	}
	/* SIGHUP re-reads the credentials (rotated keys) instead of ending the session. */
	struct sigaction hup = { .sa_handler = creds_sighup, .sa_flags = SA_RESTART };
	sigemptyset(&hup.sa_mask);
	sigaction(SIGHUP, &hup, NULL);
	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_signals;
	fuse_loop_cfg_set_clone_fd(loop, 0);
	fuse_loop_cfg_set_max_threads(loop, 64);
	fuse_loop_cfg_set_idle_threads(loop, 8);
	/* 0: unmounted; > 0: ended by SIGTERM/SIGINT (a clean stop); < 0: an error */
	rc = fuse_loop_mt(fuse, loop);
	status = rc >= 0 ? 0 : 1;
	if (rc < 0)
		log_err("the FUSE session ended with an error: %s", strerror(-rc));
	else
		log_info("the FUSE session ended (%s)", rc ? strsignal(rc) : "unmounted");
	/* Stop the read-ahead workers before the stores go: after a lazy unmount the kernel
	 * may never send RELEASE for the last open files, whose fetches would otherwise
	 * still be running against a destroyed S3 client. */
	if (fy.readahead) {
		ra_shutdown();
		fy.readahead = 0;
	}
	fuse_loop_cfg_destroy(loop);
out_signals:
	fuse_remove_signal_handlers(fuse_get_session(fuse));
	ignore_sigpipe();
	/* FUSE goes before the stores: fuse_destroy unlinks the files that lost their name
	 * while open and were still open at the end (a lazy unmount), through fs_unlink,
	 * which needs the stores, the ledger and the write-back; then it calls fs_destroy. */
	fuse_unmount(fuse);
	fuse_destroy(fuse);
	fuse = NULL;
out_stores:
	mirror_stop(&fy);
	fleet_stop(&fy);
	mig_stop(&fy);
	close_stores(&fy);
	ledger_close(fy.ledger);
out_unmount:
	if (fuse)
		fuse_unmount(fuse);
out_fuse:
	if (fuse)
		fuse_destroy(fuse);
out_curl:
	curl_global_cleanup();
out_cfg:
	fuse_opt_free_args(&args);
	for (size_t i = 0; i < cl.nopts; i++)
		util_free_secret(cl.opts[i]);
	free(cl.opts);
	buf_free(&cl.fuse_opts);
	cfg_free(&cfg);
	return status;
}
