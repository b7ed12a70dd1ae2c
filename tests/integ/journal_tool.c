/* journal_tool.c - a test helper that edits an unmounted ledger's journal, for
 * tests/integration/finish.sh until changes made through a mount are journaled:
 *   journal_tool STATE_DIR append PATH   journal a `write` of PATH
 *   journal_tool STATE_DIR clear         drop every entry (as a drained journal)
 *   journal_tool STATE_DIR count         print the number of entries
 * Exit 0 / 1 with the error. The ledger has one writer: the mount must be down. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ledger/ledger.h"

int main(int argc, char **argv)
{
	struct ledger *l;
	struct ledger_stats st;
	int rc;
	if (argc < 3) {
		fprintf(stderr, "usage: journal_tool STATE_DIR append PATH | clear | count\n");
		return 2;
	}
	if ((rc = ledger_open(argv[1], 0, &l))) {
		fprintf(stderr, "journal_tool: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	if (!strcmp(argv[2], "append") && argc == 4) {
		struct ledger_jentry e = { .op = LEDGER_OP_WRITE, .path = argv[3] };
		uint64_t seq;
		rc = ledger_journal_append(l, &e, &seq);
	} else if (!strcmp(argv[2], "clear")) {
		rc = ledger_stats(l, &st);
		if (!rc && st.journal_next_seq)
			rc = ledger_journal_delete_upto(l, st.journal_next_seq);
		rc = rc < 0 ? rc : 0;
	} else if (!strcmp(argv[2], "count")) {
		rc = ledger_stats(l, &st);
		if (!rc)
			printf("%llu\n", (unsigned long long)st.journal_pending);
	} else {
		rc = -EINVAL;
	}
	ledger_close(l);
	if (rc)
		fprintf(stderr, "journal_tool: %s: %s\n", argv[2], strerror(-rc));
	return rc ? 1 : 0;
}
