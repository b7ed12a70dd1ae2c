#!/bin/sh
# Runs one criterion unit-test program so that it reports TAP on stdout (parsed by
# automake's tap-driver) while its failure details go to stderr (kept in the .log file).
prog=$1; shift
exec "$prog" --tap=/dev/stdout --ascii -j1 "$@"
