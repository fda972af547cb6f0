#!/usr/bin/env bash
# An example asked for help, as a newcomer first runs it: --help and -h each print its usage
# on stdout, nothing on stderr, and exit 0 at once, having started nothing (a server that had
# started would still be running at the time limit).
#   help.sh <path to the example>
set -euo pipefail
program=$1
name=$(basename "$program")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for flag in --help -h; do
    code=0
    timeout --kill-after=1 10 "$program" "$flag" >"$dir/out" 2>"$dir/err" || code=$?
    cat "$dir/out"
    [[ $code == 0 ]] || fail "$name $flag exited with $code, not 0 (124: still running after 10 s)"
    [[ ! -s $dir/err ]] || fail "$name $flag wrote to stderr: $(cat "$dir/err")"
    head -n 1 "$dir/out" | grep -Eq "^usage: [^ ]*$name( |$)" || fail "$name $flag: its first line is not its usage"
done
