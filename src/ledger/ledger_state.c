/* ledger_state.c - the file state machine: the table of events (state x event -> new state,
 * and who may cause the event), the state and event names, and lg_state_apply, the one
 * function through which every write of a file record passes its state change.
 */
#include "ledger/ledger_int.h"

#include <errno.h>

#include "base/log.h"

#define ABS   LEDGER_ABSENT
#define S3    LEDGER_S3_ONLY
#define QUE   LEDGER_QUEUED
#define COPY  LEDGER_COPYING
#define MIG   LEDGER_MIGRATED
#define MOD   LEDGER_MODIFIED
#define NFS   LEDGER_NFS_ONLY
#define FAIL  LEDGER_FAILED
#define CONF  LEDGER_CONFLICT
#define SAME  LEDGER_T_SAME
#define KEEP  LEDGER_T_KEEP
#define STALE LEDGER_T_STALE
#define NO    LEDGER_T_NO
#define ANY   LEDGER_T_ANY
#define ROW(abs, s3, que, copy, mig, mod, nfs, fail, conf) \
	{ [ABS] = abs, [S3] = s3, [QUE] = que, [COPY] = copy, [MIG] = mig, [MOD] = mod, \
	  [NFS] = nfs, [FAIL] = fail, [CONF] = conf }

/* doc/ledger.md draws this table: keep them the same. */
const struct ledger_transition ledger_transitions[LEDGER_NEVENTS] = {
	/*                                                  from: absent s3-only queued copying
	 *                                                        migrated modified nfs-only
	 *                                                        failed conflict */
	[LEDGER_EV_QUEUE] = { "queue", LEDGER_BY_LEDGER,
		ROW(QUE,  QUE,  SAME, SAME, SAME, SAME, SAME,  QUE,  SAME) },
	[LEDGER_EV_TAKE] = { "take", LEDGER_BY_LEDGER,
		ROW(COPY, COPY, COPY, SAME, SAME, SAME, SAME,  COPY, SAME) },
	[LEDGER_EV_REQUEUE] = { "requeue", LEDGER_BY_LEDGER,
		ROW(KEEP, SAME, SAME, QUE,  SAME, SAME, SAME,  SAME, SAME) },
	[LEDGER_EV_GIVE_UP] = { "give-up", LEDGER_BY_LEDGER,
		ROW(FAIL, FAIL, FAIL, FAIL, SAME, SAME, SAME,  SAME, SAME) },
	[LEDGER_EV_DEQUEUE] = { "dequeue", LEDGER_BY_LEDGER,
		ROW(KEEP, SAME, S3,   S3,   SAME, SAME, SAME,  SAME, SAME) },
	[LEDGER_EV_COPIED] = { "copied", LEDGER_BY_LEDGER,
		ROW(MIG,  MIG,  MIG,  MIG,  MIG,  STALE, STALE, MIG, STALE) },
	[LEDGER_EV_IMPORT] = { "import", LEDGER_BY_LEDGER,
		ROW(ANY,  ANY,  SAME, SAME, SAME, SAME, SAME,  SAME, SAME) },
	[LEDGER_EV_EDIT] = { "edit", LEDGER_BY_LEDGER,
		ROW(NO,   SAME, SAME, SAME, SAME, SAME, SAME,  SAME, SAME) },
	[LEDGER_EV_FOUND] = { "found", LEDGER_BY_MIGRATE,
		ROW(KEEP, MOD,  MOD,  MOD,  KEEP, KEEP, KEEP,  MOD,  KEEP) },
	[LEDGER_EV_WRITTEN] = { "written", LEDGER_BY_VIEW,
		ROW(KEEP, KEEP, KEEP, KEEP, MOD,  KEEP, KEEP,  KEEP, KEEP) },
	[LEDGER_EV_UPLOADED] = { "uploaded", LEDGER_BY_MIRROR,
		ROW(NFS,  SAME, SAME, SAME, SAME, SAME, SAME,  SAME, SAME) },
	[LEDGER_EV_CONFLICT] = { "conflict", LEDGER_BY_FLEET | LEDGER_BY_MIRROR,
		ROW(KEEP, KEEP, KEEP, KEEP, CONF, CONF, CONF,  KEEP, CONF) },
	[LEDGER_EV_KEPT] = { "kept", LEDGER_BY_MIRROR,
		ROW(NFS,  SAME, SAME, SAME, SAME, SAME, SAME,  SAME, SAME) },
};

static const char *const state_names[LEDGER_NSTATES] = {
	"s3-only", "queued", "copying", "migrated", "modified", "nfs-only", "failed", "conflict"
};

const char *ledger_state_name(int state)
{
	return state >= 0 && state < LEDGER_NSTATES ? state_names[state] : "?";
}

int ledger_state_parse(const char *s)
{
	for (int i = 0; i < LEDGER_NSTATES; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -EINVAL;
}

const char *ledger_event_name(int event)
{
	return event >= 0 && event < LEDGER_NEVENTS ? ledger_transitions[event].name : "?";
}

int ledger_state_next(int from, int event, unsigned who, int want, int *to)
{
	if (event < 0 || event >= LEDGER_NEVENTS || from < 0 || from > LEDGER_ABSENT ||
	    want < -1 || want >= LEDGER_NSTATES)
		return -EINVAL;
	const struct ledger_transition *t = &ledger_transitions[event];
	if (!who || (who & ~t->who))
		return -EINVAL;
	int next = t->to[from];
	switch (next) {
	case LEDGER_T_KEEP:
		return 1;
	case LEDGER_T_STALE:
		return -ESTALE;
	case LEDGER_T_NO:
		return -EINVAL;
	case LEDGER_T_ANY:
		if (want < 0)
			return -EINVAL;
		next = want;
		break;
	case LEDGER_T_SAME:
		next = from;
		break;
	}
	if (next < 0 || next >= LEDGER_NSTATES || (want >= 0 && want != next))
		return -EINVAL;
	*to = next;
	return 0;
}

int lg_state_apply(const char *path, struct ledger_file *rec, bool exists, int event,
		   unsigned who, int want)
{
	int from = exists ? rec->state : LEDGER_ABSENT, to;
	int rc = ledger_state_next(from, event, who, want, &to);
	if (rc == -EINVAL)
		log_err("ledger: %s: refused event %s (by 0x%x) from %s%s%s", path,
			ledger_event_name(event), who,
			exists ? ledger_state_name(from) : "no record",
			want >= 0 ? " to " : "", want >= 0 ? ledger_state_name(want) : "");
	if (rc)
		return rc;
	rec->state = (uint8_t)to;
	return 0;
}
