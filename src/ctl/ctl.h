/* ctl.h - what ferryctl's commands share (tmux's cmd-*.c pattern): one descriptor per
 * command, each in its own src/ctl/cmd-NAME.c, listed in src/ferryctl.c's table, and the
 * helpers every command needs: xattrs of a mount, finding the mount's root and its ledger,
 * progress on a terminal.
 *
 * Commands talk to a running mount only through user.ferryfs.* extended attributes, and
 * read its ledger only read-only (LEDGER_RDONLY beside the daemon). They never write the
 * ledger of a mounted filesystem. Exit status: 0 ok, 1 failure, 2 usage. */
#ifndef FERRY_CTL_H
#define FERRY_CTL_H

#include <stdint.h>
#include <stdio.h>

struct ledger;
struct crawl_job;

struct ctl_cmd {
	const char *name;
	const char *usage;
	int (*run)(int argc, char **argv);   /* argv[0] is the command name; returns 0/1/2 */
};

extern const struct ctl_cmd ctl_cmd_show, ctl_cmd_stats, ctl_cmd_status, ctl_cmd_migrate,
	ctl_cmd_pause, ctl_cmd_resume, ctl_cmd_verify, ctl_cmd_scan, ctl_cmd_rebuild,
	ctl_cmd_finish, ctl_cmd_syncback, ctl_cmd_revert, ctl_cmd_plan;

/* Print "ferryctl: " + message to stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* getxattr into a malloc'd NUL-terminated string. 0 / -errno. */
int ctl_getxattr(const char *path, const char *name, char **out);
/* The same, of a symlink itself (lgetxattr). */
int ctl_lgetxattr(const char *path, const char *name, char **out);
/* setxattr of user.ferryfs.<name> = value. 0 / -errno. */
int ctl_setxattr(const char *path, const char *name, const char *value);

/* The value of one "key value" line of user.ferryfs.stats (text as read), 0 if absent. */
uint64_t ctl_stat_value(const char *text, const char *key);

/* The root of the ferryfs mount holding path (realpath'd) into out (PATH_MAX), and the
 * path inside the mount ("/" for the root) into rel. 0 / -ENOENT (not in a ferryfs
 * mount) / -errno. */
int ctl_mount_of(const char *path, char *root, char *rel);
/* Every ferryfs mount of this host, from /proc/mounts; returns how many (at most max). */
int ctl_mounts(char roots[][4096], int max);

/* The configuration of the ferryfs daemon serving root, parsed from its command line in
 * /proc (config file and -o options, as ferryfs parses them; credentials not resolved).
 * *out is the caller's to cfg_free. 0 / -ENOENT (no such daemon on this host). */
struct ferry_config;
int ctl_mount_config(const char *root, struct ferry_config *out);

/* Where the mount's ledger lives: `state` if given, else what the daemon says
 * (user.ferryfs.state_dir), else found from the daemon's command line (/proc). 0 / -ENOENT. */
int ctl_state_dir(const char *root, const char *state, char *out, size_t outlen);
/* Open the mount's ledger read-only. 0 / -errno (logged). */
int ctl_open_ledger(const char *root, const char *state, struct ledger **out);
/* Find the crawl job matching dir/kind/prio/shard/prefix in the ledger: slot or -ENOENT. */
int ctl_find_job(struct ledger *l, const char *dir, int kind, int prio, unsigned shard_i,
		 unsigned shard_n, const char *prefix, struct crawl_job *out);

/* Progress on a terminal (stderr): a bar and a label, redrawn in place. Nothing when
 * stderr is not a terminal. ctl_progress_done ends the line. */
void ctl_progress(double done, double total, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void ctl_progress_done(void);
/* Bar of width w into out (w + 3 bytes): "[####------]". */
void ctl_bar(double frac, int w, char *out);

/* Human sizes: "1.5 GiB". out >= 16 bytes. */
const char *ctl_human(double bytes, char *out);

#endif
