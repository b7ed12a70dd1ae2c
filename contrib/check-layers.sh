#!/bin/bash
# check-layers.sh - the include graph of src/ has no loop: neither between modules (a
# module is NAME.c with its NAME.h) nor between folders (base, s3, store, view ...). The
# graph is read from the `#include "folder/name.h"` lines; tsort finds the loops. Prints
# one line "layers: ok (...)" or the loops found, and exits 1 on any.
# Usage: contrib/check-layers.sh [SRC_DIR]   (default: src/ beside this script)
set -uo pipefail
src=${1:-"$(dirname "$0")/../src"}
cd "$src" || { echo "layers: FAILED: no source directory $src"; exit 1; }

# A module's private header (NAME-impl.h, NAME-int.h or NAME_int.h, shared by the files
# that implement NAME) belongs to module NAME.
module_of() {
	local m=$1
	m=${m%-impl}; m=${m%-int}; m=${m%_int}
	echo "$m"
}

# "from to" per include between modules: src/view/ns.c including "view/route.h" gives
# "view/ns view/route". A module including its own header is no edge.
module_edges() {
	find . -name '*.[ch]' | sed 's#^\./##' | sort | while read -r f; do
		from=$(module_of "${f%.[ch]}")
		sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' "$f" |
			while read -r to; do
				[ -e "$to.h" ] || continue    # config.h and other generated headers
				to=$(module_of "$to")
				[ "$to" = "$from" ] || echo "$from $to"
			done
	done
}

folder_of() { case $1 in */*) echo "${1%%/*}" ;; *) echo "." ;; esac; }

# tsort prints "tsort: -: input contains a loop:" and the members of each loop on stderr
loops() {
	tsort 2>&1 >/dev/null | sed -n 's/^tsort: //p' | grep -v 'input contains a loop'
}

edges=$(module_edges)
nmod=$(printf '%s\n' "$edges" | tr ' ' '\n' | sort -u | grep -c .)
folder_edges=$(printf '%s\n' "$edges" | while read -r a b; do
	fa=$(folder_of "$a"); fb=$(folder_of "$b")
	[ "$fa" = "$fb" ] || echo "$fa $fb"
done | sort -u)
nfold=$(printf '%s\n' "$folder_edges" | tr ' ' '\n' | sort -u | grep -c .)

fail=0
mod_loops=$(printf '%s\n' "$edges" | loops)
if [ -n "$mod_loops" ]; then
	echo "layers: FAILED: include loop between modules, through:"
	printf '%s\n' "$mod_loops" | sort -u | sed 's/^/  /'
	fail=1
fi
fold_loops=$(printf '%s\n' "$folder_edges" | loops)
if [ -n "$fold_loops" ]; then
	echo "layers: FAILED: include loop between folders, through:"
	printf '%s\n' "$fold_loops" | sort -u | sed 's/^/  /'
	fail=1
fi
[ "$fail" = 1 ] || echo "layers: ok ($nmod modules, $nfold folders, no include loop)"
exit "$fail"
