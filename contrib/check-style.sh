#!/bin/bash
# check-style.sh - the line-length rule: no line of a C source or header under src/ or tests/
# is wider than 100 columns (a tab advances to the next multiple of 8; a UTF-8 character is
# one column). Lists each offending line as FILE:LINE: WIDTH and exits 1 if there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - <<'PY'
import os, sys

MAX = 100
bad = []
for top in ('src', 'tests'):
    for d, dirs, files in os.walk(top):
        dirs[:] = sorted(x for x in dirs if x != 'node_modules')
        for name in sorted(files):
            if not name.endswith(('.c', '.h')):
                continue
            path = os.path.join(d, name)
            with open(path, encoding='utf-8', errors='replace') as f:
                for n, line in enumerate(f, 1):
                    width = len(line.rstrip('\n').expandtabs(8))
                    if width > MAX:
                        bad.append('%s:%d: %d columns' % (path, n, width))
if bad:
    print('\n'.join(bad))
    print('check-style: %d line(s) over %d columns (tabs count as 8)' % (len(bad), MAX))
    sys.exit(1)
print('check-style: no line over %d columns in the C files of src/ and tests/' % MAX)
PY
