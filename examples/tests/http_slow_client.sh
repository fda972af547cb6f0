#!/usr/bin/env bash
# http_server against clients that send a request a byte at a time, each byte well within
# the per-read timeout: with --header-timeout-ms 1000 --request-timeout-ms 2000, a request
# whose head trickles in is answered 408 Request Timeout with Connection: close, and its
# connection closed, between 1 and 3 seconds after its first byte; one whose body trickles
# in, between 2 and 4 seconds. Meanwhile the same (single) worker answers another
# connection. The deadlines count per request: on a keep-alive connection, a second request
# begun after the first one's deadline, and arriving in two reads, is answered. Bad values
# of the options are refused. Every wait is for an answer, an end of stream or an exit, each
# bounded; the only sleeps pace what a client sends. Needs only bash and coreutils.
#   http_slow_client.sh <path to http_server>
set -euo pipefail
program=$1
source "$(dirname "$0")/driver.sh"

header_ms=1000
request_ms=2000
pace=0.2  # seconds between two bytes of a trickle
dripper=

note_line() { :; }  # one worker, never replaced: nothing to keep track of

now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# Sends $1 (printf format) on fd 5 at once, then $2 a byte every $pace seconds, in the
# background; it stops at the end of $2 or at the first write the server refuses.
trickle() {
    local first=$1 rest=$2
    (
        printf "$first" >&5 2>/dev/null || exit 0
        for ((i = 0; i < ${#rest}; i++)); do
            printf '%s' "${rest:i:1}" >&5 2>/dev/null || exit 0
            sleep "$pace"
        done
    ) &
    dripper=$!
}

stop_trickle() {
    kill "$dripper" 2>/dev/null || true
    wait "$dripper" 2>/dev/null || true
    dripper=
}

# GET / with Connection: close on a connection of its own: `status`, `body`.
get() {
    local reply
    exec 4<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n' >&4
    reply=$(timeout 5 cat <&4) || true
    exec 4<&-
    status=${reply%%$'\r'*}
    body=${reply#*$'\r\n\r\n'}
}

# One response from fd 5, on a connection that stays open: `status`, `body`.
read_response() {
    local line length=0
    IFS= read -r -t 5 -u 5 status || fail "no response within 5 s"
    status=${status%$'\r'}
    while IFS= read -r -t 5 -u 5 line && [[ $line != $'\r' ]]; do
        [[ $line =~ ^Content-Length:\ ([0-9]+)$'\r'$ ]] && length=${BASH_REMATCH[1]}
    done
    body=
    if ((length > 0)); then IFS= read -r -t 5 -N "$length" -u 5 body || fail "no body within 5 s"; fi
}

# Trickles a request on a new connection: $1 sent at once, then $2 a byte at a time, more
# bytes than can come within the 6 seconds waited. While it trickles, another connection
# gets its answer. `reply`: all that came back until the server closed the connection;
# `took`: milliseconds from connecting until then.
slow_request() {
    local start code=0
    start=$(now_ms)
    exec 5<>"/dev/tcp/127.0.0.1/$port"
    trickle "$1" "$2"
    get
    [[ $status == 'HTTP/1.1 200 OK' && $body == 'Hello, World!' ]] ||
        fail "another connection, while one trickled: '$status' '$body'"
    kill -0 "$dripper" 2>/dev/null || fail "the trickle ended before the other connection was answered"
    reply=$(timeout 6 cat <&5) || code=$?
    took=$(($(now_ms) - start))
    stop_trickle
    exec 5<&-
    ((code == 0)) || fail "the connection was still open after $took ms, with '${reply%%$'\r'*}' answered"
}

# $1: what trickled; $2: the deadline that should have passed, in ms.
expect_timeout() {
    echo "$1: answered '${reply%%$'\r'*}' and closed after $took ms"
    [[ ${reply%%$'\r'*} == 'HTTP/1.1 408 Request Timeout' ]] || fail "$1: '$reply', not a 408"
    [[ $reply == *$'\r\nConnection: close\r\n'* ]] || fail "$1: the 408 does not say Connection: close: '$reply'"
    ((took >= $2)) || fail "$1: closed after $took ms, before the $2 ms deadline"
    ((took < $2 + 2000)) || fail "$1: closed after $took ms, more than 2 s past the $2 ms deadline"
}

check_slow_head() {
    slow_request 'GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ' "$(printf 'a%.0s' {1..40})"$'\r\n\r\n'
    expect_timeout "a trickling head" "$header_ms"
}

check_slow_body() {
    slow_request 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 40\r\n\r\n' "$(printf 'b%.0s' {1..40})"
    expect_timeout "a trickling body" "$request_ms"
}

# A second request on a kept connection, begun later than the first request's head deadline
# and arriving in two parts, a third of that deadline apart: its own deadline holds.
check_per_request() {
    exec 5<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.1\r\nHost: test\r\n\r\n' >&5
    read_response
    [[ $status == 'HTTP/1.1 200 OK' && $body == 'Hello, World!' ]] || fail "first request: '$status' '$body'"
    sleep 1.5
    printf 'GET / HTTP/1.1\r\nHost: te' >&5
    sleep 0.3
    printf 'st\r\nConnection: close\r\n\r\n' >&5
    read_response
    exec 5<&-
    [[ $status == 'HTTP/1.1 200 OK' && $body == 'Hello, World!' ]] ||
        fail "a second request, in two parts, begun 1.5 s after the first: '$status' '$body'"
    echo "a second request on a kept connection, in two parts, after the first's deadline: $status"
}

check_bad_options() {
    local option code
    for option in --header-timeout-ms --request-timeout-ms; do
        code=0
        timeout 10 "$program" "$option" soon >/dev/null 2>"$dir/usage" || code=$?
        [[ $code == 2 ]] || fail "$option soon: exit code $code, not 2"
        grep -q -- "$option" "$dir/usage" || fail "$option soon: the usage does not name it: $(cat "$dir/usage")"
    done
}

start --workers 1 --port 0 --header-timeout-ms "$header_ms" --request-timeout-ms "$request_ms"
expect "^Primary $primary running$"
expect '^Listening on http://127\.0\.0\.1:([0-9]+) '
port=${BASH_REMATCH[1]}  # printed once the worker listens
check_slow_head
check_slow_body
check_per_request

kill -TERM "$primary"
expect '^worker [0-9]+ \(pid [0-9]+\): [0-9]+ connections, [0-9]+ requests$'
expect "^Primary $primary stopped: exit code 0$"
code=0
wait "$primary" || code=$?
primary=
[[ $code == 0 ]] || fail "http_server exited with $code, not 0"
check_bad_options
echo "PASS"
