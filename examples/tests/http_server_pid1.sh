#!/usr/bin/env bash
# http_server as PID 1 of a new PID namespace, as a container runtime starts it
# (unshare --pid --fork --mount-proc): its workers serve; a process started into the
# namespace from outside (as docker exec does) leaves an orphan, which goes to PID 1 and is
# reaped there when it ends, leaving no zombie; SIGTERM to PID 1 from outside (docker stop)
# stops it gracefully with exit code 0. Every step waits for a line, an answer or an exit
# (each bounded), never for a fixed time. Needs root, util-linux's unshare and nsenter, and
# python3 (to wait on a pidfd, which reports POLLHUP once its process is reaped: Linux 6.9 on).
#   http_server_pid1.sh <path to http_server>
set -euo pipefail
program=$1
source "$(dirname "$0")/driver.sh"

declare -A live=()

note_line() {
    local line=$1
    if [[ $line =~ ^Worker\ ([0-9]+)\ started$ ]]; then
        live[${BASH_REMATCH[1]}]=1
    elif [[ $line =~ ^Worker\ ([0-9]+)\ died ]]; then
        unset "live[${BASH_REMATCH[1]}]"
    fi
}

get() {
    exec 4<>"/dev/tcp/127.0.0.1/$port"
    printf "GET $1 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n" >&4
    local reply
    reply=$(timeout 10 cat <&4) || true
    exec 4<&-
    status=${reply%%$'\r'*}
    body=${reply#*$'\r\n\r\n'}
}

# Runs a command inside the namespace, seeing its /proc.
inside() { timeout 20 nsenter -t "$init" --pid --mount -- "$@"; }

# --kill-child: should this script die, the namespace's PID 1 and everything in it go too.
mkfifo "$dir/out"
unshare --pid --fork --mount-proc --kill-child "$program" --workers 2 --port 0 >"$dir/out" 2>&1 &
primary=$!
exec 3<"$dir/out"
expect '^Primary 1 running$'
expect '^Listening on http://127\.0\.0\.1:([0-9]+) '
port=${BASH_REMATCH[1]}
while ((${#live[@]} < 2)); do expect '^Worker [0-9]+ started$'; done
init=$(cat "/proc/$primary/task/$primary/children")
init=${init% }
[[ $init =~ ^[0-9]+$ ]] || fail "no PID 1 under unshare ($primary): '$init'"

get /pid
[[ $status == "HTTP/1.1 200 OK" && -n ${live[$body]:-} ]] || fail "/pid answered '$status' '$body', not a worker (${!live[*]})"

echo "--- an orphan in the namespace"
mkfifo "$dir/gate"
orphan=$(inside sh -c 'sh -c "read x <\"\$1\"" orphan "$1" </dev/null >/dev/null 2>&1 & echo $!' sh "$dir/gate")
[[ $orphan =~ ^[0-9]+$ ]] || fail "no orphan started: '$orphan'"
read -r _ _ _ parent _ < <(inside cat "/proc/$orphan/stat")
[[ $parent == 1 ]] || fail "the orphan $orphan's parent is $parent, not PID 1"

mkfifo "$dir/watch"
inside python3 -c '
import os, select, sys
fd = os.pidfd_open(int(sys.argv[1]))
print("watching", flush=True)
p = select.poll()
p.register(fd, select.POLLHUP)
events = p.poll(10000)
sys.exit(0 if events and events[0][1] & select.POLLHUP else 1)
' "$orphan" >"$dir/watch" &
watcher=$!
exec 5<"$dir/watch"
read -r -t 20 -u 5 line && [[ $line == watching ]] || fail "the watcher did not start"
echo go >"$dir/gate"
wait "$watcher" || fail "orphan $orphan was not reaped within 10 s"
exec 5<&-
zombies=$(inside sh -c 'grep -l "^State:[[:space:]]*Z" /proc/[0-9]*/status 2>/dev/null || true')
[[ -z $zombies ]] || fail "zombies left in the namespace: $zombies"
echo "orphan $orphan reaped by PID 1"

get /
[[ $body == 'Hello, World!' ]] || fail "after the orphan, / answered '$body'"

echo "--- SIGTERM to PID 1 from outside"
kill -TERM "$init"
for i in 1 2; do expect '^worker [0-9]+ \(pid [0-9]+\): [0-9]+ connections, [0-9]+ requests$'; done
expect '^Primary 1 stopped: exit code 0$'
code=0
wait "$primary" || code=$?
primary=
exec 3<&-
[[ $code == 0 ]] || fail "unshare (http_server as PID 1) exited with $code, not 0"
echo "PASS"
