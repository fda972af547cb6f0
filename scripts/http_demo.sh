#!/usr/bin/env bash
# The quick-start demo: installs what it needs, builds examples/http_server, starts it (one
# worker per CPU, on a free port), asks it for /, /pid and /json, crashes a worker with
# /crash and shows the primary replacing it, puts three seconds of load on it with wrk,
# shows the cluster as an operator sees it (clusterctl status through the control socket,
# and the primary's own /metrics), then stops it with SIGTERM: each worker prints its
# counts, and the exit code is 0.
# Requests go over bash's /dev/tcp: no curl needed. Run it as root on Debian 12 (it
# installs packages), from anywhere in the repository:
#   scripts/http_demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

dir=$(mktemp -d)
server=
trap '[[ -n $server ]] && kill -KILL "$server" 2>/dev/null; rm -rf "$dir"' EXIT
log=$dir/log

scripts/install-deps.sh --demo
echo "==> building http_server and clusterctl in build/"
if ! { cmake -S . -B build && cmake --build build --target http_server clusterctl -j "$(nproc)"; } >"$dir/build" 2>&1; then
    cat "$dir/build" >&2
    exit 1
fi

# Waits (10 s at most) until the server has printed a line matching $1 (an ERE);
# BASH_REMATCH then holds the last such line's match.
wait_for() {
    local line
    for _ in {1..100}; do
        line=$(grep -E "$1" "$log" | tail -n 1) || true
        [[ -n $line && $line =~ $1 ]] && return 0
        sleep 0.1
    done
    echo "http_demo: http_server did not print a line matching '$1'" >&2
    exit 1
}

# One request on its own connection, printed with the answer; $2: another port.
request() {
    local answer
    echo "==> GET $1"
    exec 4<>"/dev/tcp/127.0.0.1/${2:-$port}"
    printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$1" >&4
    answer=$(timeout 5 cat <&4 | tr -d '\r') || true
    exec 4<&-
    if [[ -n $answer ]]; then echo "$answer"; else echo "(the connection closed with no answer)"; fi
    echo
}

echo
control=$dir/control.sock
echo "==> starting build/examples/http_server --port 0 --metrics 127.0.0.1:0 --control $control"
echo "    (its lines appear as it prints them; its workers' come through it, as [worker N] ...)"
# Through tee, which the script also reads: the port is in the server's output.
mkfifo "$dir/out"
: >"$log"
tee "$log" <"$dir/out" &
printer=$!
build/examples/http_server --port 0 --metrics 127.0.0.1:0 --control "$control" >"$dir/out" 2>&1 &
server=$!
wait_for '^Listening on http://127\.0\.0\.1:([0-9]+) \(.*, ([0-9]+) workers?\)'
port=${BASH_REMATCH[1]}
workers=${BASH_REMATCH[2]}
wait_for "^Primary $server running"
wait_for '^Metrics on http://127\.0\.0\.1:([0-9]+)/metrics'
metrics_port=${BASH_REMATCH[1]}
started='^Worker [0-9]* started$'
for _ in {1..100}; do
    (($(grep -cE "$started" "$log") >= workers)) && break
    sleep 0.1
done

request /
request /pid
request /json

request /crash
wait_for '^Worker [0-9]+ died\. Restarting\.\.\.$'
for _ in {1..100}; do
    (($(grep -cE "$started" "$log") > workers)) && break
    sleep 0.1
done
request /pid

echo "==> wrk -t2 -c64 -d3s http://127.0.0.1:$port/"
wrk -t2 -c64 -d3s "http://127.0.0.1:$port/"
echo

echo "==> build/tools/clusterctl --socket $control status"
build/tools/clusterctl --socket "$control" status
echo
echo "==> GET /metrics from the primary (a few of its lines)"
request /metrics "$metrics_port" | grep -E '^(cluster_workers |cluster_worker_restarts_total |cluster_worker_rss_bytes|cluster_connections_handed_total)'
echo

echo "==> kill -TERM $server: a graceful stop"
kill -TERM "$server"
code=0
wait "$server" || code=$?
server=
wait "$printer"  # until the last line is out: the workers, which share the pipe, are gone
echo "==> http_server exited with code $code"
exit "$code"
