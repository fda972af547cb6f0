#!/usr/bin/env bash
# http_server under every schedule, as a client and an operator see it: with 2 workers on
# a port the kernel picks, it answers /, /pid (one of its workers), /json, 404, 405 and 400;
# it answers two requests pipelined in one write on one connection; a worker that /crash
# aborts is replaced and the server still answers; SIGTERM stops it with exit code 0 after
# each worker printed its counts. Under sticky keyed by a cookie (--sticky-key cookie:sid),
# each sid keeps its worker, and sids spread over both. Under round_robin, with --metrics, the
# primary's /metrics counts the workers, the restart and the crash. Every step waits for a line or an answer (each wait
# bounded), never for a fixed time. Needs only bash and coreutils: requests go over
# bash's /dev/tcp.
#   http_server.sh <path to http_server>
set -euo pipefail
program=$1
source "$(dirname "$0")/driver.sh"

declare -A live=()  # worker pids, from the started and died lines

# Keeps track of the workers, from the lines that say one started or ended.
note_line() {
    local line=$1
    if [[ $line =~ ^Worker\ ([0-9]+)\ started$ ]]; then
        live[${BASH_REMATCH[1]}]=1
    elif [[ $line =~ ^Worker\ ([0-9]+)\ died ]]; then
        unset "live[${BASH_REMATCH[1]}]"
    fi
}

until_workers() {
    while ((${#live[@]} < $1)); do expect '^Worker [0-9]+ started$'; done
}

# Sends $1 (printf format: the raw request bytes) on a new connection; `reply` is all that
# comes back until the server closes the connection, as every request here asks.
exchange() {
    exec 4<>"/dev/tcp/127.0.0.1/$port"
    printf "$1" >&4
    reply=$(timeout 10 cat <&4) || true
    exec 4<&-
}

# GET $1 with Connection: close; `status` is the status line, `body` the body.
get() {
    exchange "GET $1 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    status=${reply%%$'\r'*}
    body=${reply#*$'\r\n\r\n'}
}

expect_status() { [[ $status == "HTTP/1.1 $1" ]] || fail "$2: '$status', not 'HTTP/1.1 $1'"; }

check_routes() {
    get /
    expect_status "200 OK" /
    [[ $body == 'Hello, World!' ]] || fail "/ answered '$body'"
    get /pid
    expect_status "200 OK" /pid
    [[ -n ${live[$body]:-} ]] || fail "/pid answered '$body', not the pid of a worker (${!live[*]})"
    get /json
    expect_status "200 OK" /json
    [[ $body =~ ^\{\"message\":\"Hello,\ World!\",\"worker\":[0-9]+,\"pid\":([0-9]+),\"requests\":[1-9][0-9]*\}$ ]] ||
        fail "/json answered '$body'"
    [[ -n ${live[${BASH_REMATCH[1]}]:-} ]] || fail "/json names pid ${BASH_REMATCH[1]}, not a worker"
    get /nowhere
    expect_status "404 Not Found" /nowhere
    exchange 'POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello'
    status=${reply%%$'\r'*}
    expect_status "405 Method Not Allowed" "POST /"
    exchange 'NOT HTTP\r\n\r\n'
    status=${reply%%$'\r'*}
    expect_status "400 Bad Request" "a malformed request"
}

# Two requests in one write on one connection: both answered, in order, the first keeping
# the connection open and the second, which asks for it, closing it.
check_pipelining() {
    exchange 'GET / HTTP/1.1\r\nHost: test\r\n\r\nGET /pid HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n'
    local first=$'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\nConnection: keep-alive\r\n\r\nHello, World!'
    local second=$'^HTTP/1\\.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: [0-9]+\r\nConnection: close\r\n\r\n([0-9]+)$'
    [[ $reply == "$first"* ]] || fail "pipelined: the first answer is not Hello, World! on a kept connection: '$reply'"
    [[ ${reply#"$first"} =~ $second ]] || fail "pipelined: the second answer is not a pid on a closing connection: '$reply'"
    [[ -n ${live[${BASH_REMATCH[1]}]:-} ]] || fail "pipelined: pid ${BASH_REMATCH[1]} is not a worker"
}

check_crash() {
    local before=${#live[@]}
    get /crash
    expect '^Worker [0-9]+ died\. Restarting\.\.\.$'
    until_workers "$before"
    get /
    [[ $body == 'Hello, World!' ]] || fail "after the crash, / answered '$body'"
}

# The primary's /metrics after check_crash: two workers, one restart, one crash.
check_metrics() {
    local saved=$port
    port=$metrics_port
    get /metrics
    port=$saved
    expect_status "200 OK" /metrics
    local line
    for line in 'cluster_workers 2' 'cluster_worker_restarts_total 1' 'cluster_worker_exits_total{reason="crash"} 1'; do
        grep -qxF "$line" <<<"$body" || fail "/metrics has no line '$line': $body"
    done
    grep -Eq '^cluster_worker_rss_bytes\{worker="[0-9]+"\} [1-9][0-9]*$' <<<"$body" || fail "/metrics has no worker's RSS"
}

# SIGTERM: every worker prints its counts, and the primary exits 0.
check_stop() {
    local code=0 i
    kill -TERM "$primary"
    for i in 1 2; do expect '^worker [0-9]+ \(pid [0-9]+\): [0-9]+ connections, [0-9]+ requests$'; done
    expect "^Primary $primary stopped: exit code 0$"
    wait "$primary" || code=$?
    primary=
    exec 3<&-
    [[ $code == 0 ]] || fail "http_server exited with $code, not 0"
}

# /pid for a client whose cookie sid=$1.
pid_for_sid() {
    exchange "GET /pid HTTP/1.1\r\nHost: test\r\nCookie: theme=dark; sid=$1\r\nConnection: close\r\n\r\n"
    body=${reply#*$'\r\n\r\n'}
    [[ -n ${live[$body]:-} ]] || fail "sid $1: /pid answered '$body', not the pid of a worker"
}

# Every sid of 20 goes to the same worker three times over, and they do not all go to one.
check_sticky_key() {
    declare -A home=() used=()
    local round sid
    for round in 1 2 3; do
        for sid in {1..20}; do
            pid_for_sid "s$sid"
            [[ -z ${home[$sid]:-} || ${home[$sid]} == "$body" ]] ||
                fail "sid s$sid went to $body after ${home[$sid]}"
            home[$sid]=$body
            used[$body]=1
        done
    done
    ((${#used[@]} == 2)) || fail "20 sids all went to one worker (${!used[*]})"
}

for schedule in round_robin shared reuseport sticky least_connections sticky-by-cookie; do
    echo "--- schedule $schedule"
    live=()
    if [[ $schedule == sticky-by-cookie ]]; then
        start --workers 2 --port 0 --schedule sticky --sticky-key cookie:sid
    elif [[ $schedule == round_robin ]]; then
        start --workers 2 --port 0 --schedule "$schedule" --metrics 127.0.0.1:0
    else
        start --workers 2 --port 0 --schedule "$schedule"
    fi
    expect "^Primary $primary running$"
    if [[ $schedule == round_robin ]]; then
        expect '^Metrics on http://127\.0\.0\.1:([0-9]+)/metrics$'
        metrics_port=${BASH_REMATCH[1]}
    fi
    expect '^Listening on http://127\.0\.0\.1:([0-9]+) '
    port=${BASH_REMATCH[1]}
    until_workers 2
    check_routes
    check_pipelining
    [[ $schedule != sticky-by-cookie ]] || check_sticky_key
    check_crash
    [[ $schedule != round_robin ]] || check_metrics
    check_stop
done
echo "PASS"
