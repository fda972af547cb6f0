#!/usr/bin/env bash
# http_server's primary replaced by SIGUSR2, as an operator upgrades a binary in place: a
# copy of the program runs from a temporary directory, and a client sends requests, a new
# connection each, the whole time. Two upgrades in a row, each new primary taking over the
# port and the old one stopping with exit code 0; a second SIGUSR2 while one runs, and one
# during a reload, refused with the reason; a file that cannot be run, refused, the primary
# untouched; a new binary that exits at once, rolled back, the old primary serving on. Not
# one request may fail. Then, under shared and reuseport, two upgrades with the client on,
# and again no failure. Every step waits for a line (each wait bounded), never for a time.
#   http_server_upgrade.sh <path to http_server>
set -euo pipefail
source "$(dirname "$0")/driver.sh"
python=/usr/bin/python3
[[ -x $python ]] || fail "$python is needed as the HTTP client"
program=$dir/http_server
cp "$1" "$program"
note_line() { :; }

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Requests to $port until $dir/stop appears (at most 60 s, 20000 requests), each on a new
# connection; says "serving" on $dir/serving after the first answer; prints "<requests>
# <failures>" and each failure on stderr.
client() {
    "$python" - "$port" "$dir/stop" "$dir/serving" >"$dir/client" <<'PY'
import os, socket, sys, time
port, stop, serving = int(sys.argv[1]), sys.argv[2], sys.argv[3]
requests = failures = 0
end = time.monotonic() + 60
while not os.path.exists(stop) and requests < 20000 and time.monotonic() < end:
    requests += 1
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"answer {answer[:40]!r}")
        if serving:
            with open(serving, "w") as f:
                f.write("serving\n")
            serving = None
    except Exception as e:
        failures += 1
        print(f"request {requests}: {e}", file=sys.stderr)
print(requests, failures)
PY
}

# SIGUSR2 to the primary; then the line naming its successor, which is the primary from now on.
upgrade() {
    local old=$primary
    kill -USR2 "$old"
    expect "^cluster: upgrade: primary ([0-9]+) is ready; primary $old stops$"
    primary=${BASH_REMATCH[1]}
    expect "^Primary $old stopped: exit code 0$"
}

# http_server under schedule $1, and the client on, answered once.
start_serving() {
    start --workers 2 --port "$port" --schedule "$1"
    expect "^Listening on http://127\.0\.0\.1:$port \($1, "
    rm -f "$dir/stop" "$dir/serving"
    mkfifo "$dir/serving"
    client &
    client_pid=$!
    read -r -t 20 said <"$dir/serving" || fail "the client got no answer"
}

# The client told to stop: none of its requests may have failed.
no_request_failed() {
    touch "$dir/stop"
    wait "$client_pid" || fail "the client failed"
    read -r requests failures <"$dir/client"
    echo "$1: $requests requests, $failures failed"
    ((requests > 0)) || fail "the client sent no request"
    ((failures == 0)) || fail "$failures of $requests requests failed"
}

stop_primary() {
    kill -TERM "$primary"
    expect "^Primary $primary stopped: exit code 0$"
    primary=
}

start_serving round_robin
first=$primary

upgrade
wait "$first" || fail "the first primary did not exit with code 0"

# A second SIGUSR2 while the first runs (the successor starting its workers) is refused,
# and the first goes through. Not both at once: the kernel would merge them into one.
old=$primary
kill -USR2 "$old"
expect "^cluster: upgrade: primary $old started $program as its successor, primary [0-9]+$"
kill -USR2 "$old"
expect '^cluster: upgrade refused: an upgrade is running already$'
expect "^cluster: upgrade: primary ([0-9]+) is ready; primary $old stops$"
primary=${BASH_REMATCH[1]}
expect "^Primary $old stopped: exit code 0$"

# During a reload: refused.
kill -HUP "$primary"
kill -USR2 "$primary"
expect '^cluster: upgrade refused: a reload is running$'
expect '^Reload done: 2 workers replaced$'

# A file that cannot be run: refused, nothing started.
chmod -x "$program"
kill -USR2 "$primary"
expect "^cluster: upgrade refused: $program cannot be run: Permission denied"
chmod +x "$program"

# A new binary that fails as it starts: rolled back, the old primary serves on.
cp "$program" "$dir/good"
printf '#!/bin/sh\nexit 3\n' >"$dir/bad"
chmod +x "$dir/bad"
mv "$dir/bad" "$program"
kill -USR2 "$primary"
expect '^cluster: upgrade rolled back: the new primary \([0-9]+\) ended before it was ready: exit code 3$'
mv "$dir/good" "$program"
upgrade

no_request_failed round_robin
stop_primary

for schedule in shared reuseport; do
    start_serving $schedule
    upgrade
    upgrade
    no_request_failed $schedule
    stop_primary
done
echo "PASS"
