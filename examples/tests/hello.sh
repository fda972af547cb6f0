#!/usr/bin/env bash
# hello as an operator sees it: its workers start and answer HTTP, one killed with SIGKILL
# is replaced, and SIGTERM disconnects them all: hello exits 0 and leaves no worker behind.
# Every step waits for the line hello prints, never for a fixed time.
#   hello.sh <path to hello>
set -euo pipefail
hello=$1
dir=$(mktemp -d)
primary=
trap '[[ -n $primary ]] && kill -KILL "$primary" 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkfifo "$dir/out"
"$hello" --workers 2 --port 0 >"$dir/out" 2>&1 &
primary=$!
exec 3<"$dir/out"

# Echoes hello's output up to the first line matching $1 (an ERE); BASH_REMATCH holds it.
expect() {
    local line
    while IFS= read -r -t 20 -u 3 line; do
        echo "$line"
        [[ $line =~ $1 ]] && return 0
    done
    fail "no line matching '$1'"
}

expect '^Listening on port ([0-9]+)$'
port=${BASH_REMATCH[1]}
expect "^Primary $primary running$"
expect '^Worker ([0-9]+) started$'
first=${BASH_REMATCH[1]}
expect '^Worker ([0-9]+) started$'
second=${BASH_REMATCH[1]}

exec 4<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HTTP/1.0\r\n\r\n' >&4
grep -qx 'hello world' <&4 || fail "no hello world from port $port"
exec 4<&-

kill -KILL "$first"
expect "^Worker $first died \(signal SIGKILL\)\. Restarting\.\.\.$"
expect '^Worker ([0-9]+) started$'
replacement=${BASH_REMATCH[1]}

kill -TERM "$primary"
expect "^Primary $primary stopping: disconnecting 2 workers$"
expect '^All workers have left$'
code=0
wait "$primary" || code=$?
primary=
cat <&3
[[ $code == 0 ]] || fail "hello exited with $code"
for pid in "$first" "$second" "$replacement"; do
    if kill -0 "$pid" 2>/dev/null; then fail "worker $pid outlived its primary"; fi
done
echo "PASS"
