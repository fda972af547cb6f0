#!/usr/bin/env bash
# http_server --workers 1 whose every worker is crashed by GET /crash as soon as it takes a
# connection: with the default restart policy, the primary gives up on the crash loop after
# 10 restarts, with exit code 3, within 30 s (the backoff adds up to 13.6 s at most). A
# client sends /crash again each time a connection ends, a bounded number of times; the
# primary holds each connection until the next worker listens. Every step waits for a
# line or a connection's end (each wait bounded), never for a fixed time.
#   http_server_crash_loop.sh <path to http_server>
set -euo pipefail
program=$1
source "$(dirname "$0")/driver.sh"

restarts=0
note_line() {
    if [[ $1 =~ ^Worker\ [0-9]+\ died\.\ Restarting\.\.\.$ ]]; then restarts=$((restarts + 1)); fi
}

# GET /crash until the primary's socket refuses: 40 at most, more than the 11 workers the
# policy starts.
crash_every_worker() {
    local i
    for ((i = 0; i < 40; i++)); do
        { exec 4<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 0
        printf 'GET /crash HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n' >&4
        timeout 10 cat <&4 >/dev/null || true
        exec 4<&-
    done
}

SECONDS=0
start --workers 1 --port 0
expect "^Primary $primary running$"
expect '^Listening on http://127\.0\.0\.1:([0-9]+) '
port=${BASH_REMATCH[1]}
crash_every_worker &
client=$!
expect '^Giving up: more than 10 unstable restarts of slot 1: each worker exited within 1000 ms of coming online, or before$'
expect "^Primary $primary stopped: exit code 3$"
code=0
wait "$primary" || code=$?
primary=
took=$SECONDS
wait "$client" || true
exec 3<&-
[[ $code == 3 ]] || fail "http_server exited with $code, not 3"
((restarts == 10)) || fail "$restarts restarts before giving up, not 10"
((took < 30)) || fail "it took $took s to give up, not under 30"
echo "gave up after $restarts restarts in $took s"
echo "PASS"
