#!/usr/bin/env bash
# http_server socket-activated by Debian's systemd-socket-activate (which sets LISTEN_PID,
# LISTEN_FDS and LISTEN_FDNAMES exactly as systemd does, and starts the server at the first
# connection): under every schedule, with 2 workers, the first client's request and the ones
# after it are answered by the workers, on the socket named with --fd or on its address with
# --port; SIGTERM stops it with exit code 0. reuseport on the tool's socket, which has no
# SO_REUSEPORT, gets the workers' clear error; on one that has it (a .socket unit's
# ReusePort=yes, made here by a small launcher) it serves. A datagram socket passed: the
# primary refuses to start, naming fd 3 and what it is, exit code 1. LISTEN_PID of another
# process: ignored, the server listens on its own port.
#   http_server_socket_activation.sh <path to http_server>
set -euo pipefail
server=$1
program=systemd-socket-activate
source "$(dirname "$0")/driver.sh"
command -v systemd-socket-activate >/dev/null || fail "systemd-socket-activate is missing (scripts/install-deps.sh installs it)"

declare -A live=()  # worker pids, from the started and died lines

note_line() {
    local line=$1
    if [[ $line =~ ^Worker\ ([0-9]+)\ started$ ]]; then
        live[${BASH_REMATCH[1]}]=1
    elif [[ $line =~ ^Worker\ ([0-9]+)\ died ]]; then
        unset "live[${BASH_REMATCH[1]}]"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# GET /pid on a new connection: `answer` is the pid in the body ("" if none came).
get_pid() {
    local reply
    exec 4<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET /pid HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n' >&4
    reply=$(timeout 10 cat <&4) || true
    exec 4<&-
    answer=${reply#*$'\r\n\r\n'}
    [[ $reply == 'HTTP/1.1 200 OK'* ]] || answer=
}

# The first request, which starts the server, is answered once its workers run; then 8
# more, each by a worker (round_robin: both of them).
check_served() {
    local schedule=$1 first
    get_pid
    first=$answer
    expect "^Primary $primary running$"
    until ((${#live[@]} >= 2)); do expect '^Worker [0-9]+ started$'; done
    [[ -n ${live[$first]:-} ]] || fail "$schedule: the first request got '$first', not a worker's pid (${!live[*]})"
    declare -A seen=([$first]=1)
    for _ in 1 2 3 4 5 6 7 8; do
        get_pid
        [[ -n ${live[$answer]:-} ]] || fail "$schedule: /pid answered '$answer', not a worker's pid (${!live[*]})"
        seen[$answer]=1
    done
    if [[ $schedule == round_robin ]] && ((${#seen[@]} < 2)); then fail "round_robin: one worker answered everything"; fi
}

stop() {
    local code=0
    kill -TERM "$primary"
    wait "$primary" || code=$?
    primary=
    exec 3<&-
    [[ $code == "$1" ]] || fail "http_server exited with $code, not $1"
}

# Starts the server under the tool, on 127.0.0.1:$port, named "web".
activated() {
    live=()
    start -l "127.0.0.1:$port" --fdname=web "$server" --workers 2 "$@"
    expect "^Listening on 127\.0\.0\.1:$port as 3\.$"
}

for schedule in round_robin shared sticky least_connections; do
    echo "--- schedule $schedule, --fd web"
    port=$(free_port)
    activated --fd web --schedule "$schedule"
    check_served "$schedule"
    stop 0
done

echo "--- schedule round_robin, the passed socket found by its address (--port)"
port=$(free_port)
activated --port "$port" --schedule round_robin
check_served round_robin
stop 0

echo "--- schedule reuseport, the tool's socket without SO_REUSEPORT: the workers say why"
port=$(free_port)
activated --fd web --schedule reuseport
exec 5<>"/dev/tcp/127.0.0.1/$port"  # starts the server
expect 'cannot listen on fd:web: schedule reuseport on an adopted socket needs SO_REUSEPORT set on it'
exec 5<&-
kill -TERM "$primary"
code=0
wait "$primary" || code=$?
primary=
exec 3<&-
# 3: the restart policy may have given up on the workers' crash loop first.
[[ $code == 0 || $code == 3 ]] || fail "reuseport refused: http_server exited with $code"

echo "--- schedule reuseport, a passed socket with SO_REUSEPORT (as ReusePort=yes makes it)"
live=()
port=$(free_port)
program=python3
start -c '
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(128)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
print("Listening on 127.0.0.1:%s as 3." % sys.argv[1], flush=True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="web")
os.execv(sys.argv[2], sys.argv[2:])' "$port" "$server" --workers 2 --fd web --schedule reuseport
expect "^Listening on 127\.0\.0\.1:$port as 3\.$"
check_served reuseport
stop 0

echo "--- a datagram socket passed: the primary does not start"
program=systemd-socket-activate
port=$(free_port)
start --datagram -l "127.0.0.1:$port" --fdname=web "$server" --workers 2 --fd web
expect "^Listening on 127\.0\.0\.1:$port as 3\.$"
echo start >"/dev/udp/127.0.0.1/$port"
expect '^cluster: socket activation: LISTEN_FDS fd 3 \("web"\): not a stream socket'
stop_code=0
wait "$primary" || stop_code=$?
primary=
exec 3<&-
[[ $stop_code == 1 ]] || fail "with a datagram socket passed, http_server exited with $stop_code, not 1"

echo "--- LISTEN_PID of another process: ignored"
live=()
program=env
# Taken for ours, fd 3 (not open here) would stop the primary from starting.
start LISTEN_PID=1 LISTEN_FDS=1 LISTEN_FDNAMES=web "$server" --workers 2 --port 0
expect '^Listening on http://127\.0\.0\.1:([0-9]+) '
port=${BASH_REMATCH[1]}
until ((${#live[@]} >= 2)); do expect '^Worker [0-9]+ started$'; done
get_pid
[[ -n ${live[$answer]:-} ]] || fail "LISTEN_PID of another process: /pid answered '$answer'"
stop 0
echo "PASS"
