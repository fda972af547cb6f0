#!/usr/bin/env bash
# udp_echo as a client and an operator see it, under shared and reuseport (and shared on
# IPv6 where the machine has ::1): with 2 workers on a port the kernel picks, a Python
# client sends bursts of datagrams (one of 60,000 bytes among them) from fresh sockets until
# both workers have answered; every answer is "<pid of a worker> <the datagram>", whole.
# SIGTERM then stops it with exit code 0, the workers' counts adding up to what was sent.
# Every step waits for a line or an answer (each wait bounded), never for a fixed time.
#   udp_echo.sh <path to udp_echo>
set -euo pipefail
program=$1
source "$(dirname "$0")/driver.sh"
python=/usr/bin/python3
[[ -x $python ]] || fail "$python is needed as the UDP client"

declare -A live=() counted=()  # worker pids, from the online lines; and their final counts
answered=0

note_line() {
    local line=$1
    if [[ $line =~ ^Worker\ [0-9]+\ \(pid\ ([0-9]+)\)\ online$ ]]; then
        live[${BASH_REMATCH[1]}]=1
    elif [[ $line =~ ^worker\ [0-9]+\ \(pid\ ([0-9]+)\):\ ([0-9]+)\ datagrams\ answered$ ]]; then
        counted[${BASH_REMATCH[1]}]=1
        answered=$((answered + BASH_REMATCH[2]))
    fi
}

# Bursts of 32 datagrams from a fresh socket each (a new source port: reuseport's hash
# spreads them), each answer checked, until two workers answered or 50 bursts went out.
# Prints the pids that answered, then the number of datagrams sent.
client() {
    "$python" - "$1" "$2" <<'PY'
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
family = socket.AF_INET6 if ":" in host else socket.AF_INET
pids, sent = set(), 0
for burst in range(50):
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        payloads = [f"burst {burst} datagram {i}".encode() for i in range(32)]
        if burst == 0:
            payloads.append(b"x" * 60000)
        for p in payloads:
            s.sendto(p, (host, port))
        sent += len(payloads)
        answers = []
        for _ in payloads:
            data, _ = s.recvfrom(70000)
            pid, space, payload = data.partition(b" ")
            if not space or not pid.isdigit():
                sys.exit(f"not '<pid> <datagram>': {data[:80]!r}")
            pids.add(pid.decode())
            answers.append(payload)
        if sorted(answers) != sorted(payloads):
            sys.exit(f"burst {burst}: the answers do not carry the datagrams sent")
    if len(pids) >= 2:
        break
print(" ".join(sorted(pids)))
print(sent)
PY
}

run_with() {
    local how=$1 host=$2 shown
    live=() counted=() answered=0
    echo "--- $how on $host"
    start --workers 2 --port 0 --schedule "$how" --host "$host"
    expect "^Primary $primary running$"
    [[ $host == *:* ]] && shown="\[$host\]" || shown=$host
    local type=udp4
    [[ $host == *:* ]] && type=udp6
    expect "^Listening on $type $shown:([0-9]+) \($how, 2 workers\)$"
    local port=${BASH_REMATCH[1]}
    while ((${#live[@]} < 2)); do expect '^Worker [0-9]+ \(pid [0-9]+\) online$'; done

    local out pids sent
    out=$(client "$host" "$port") || fail "the client failed"
    pids=$(head -n 1 <<<"$out")
    sent=$(tail -n 1 <<<"$out")
    echo "answered by pids $pids ($sent datagrams)"
    for pid in $pids; do [[ -n ${live[$pid]:-} ]] || fail "answered by pid $pid, not a worker (${!live[*]})"; done
    [[ $(wc -w <<<"$pids") == 2 ]] || fail "only pid $pids answered $sent datagrams"

    kill -TERM "$primary"
    while ((${#counted[@]} < 2)); do expect '^worker [0-9]+ \(pid [0-9]+\): [0-9]+ datagrams answered$'; done
    expect "^Primary $primary stopped: exit code 0$"
    local code=0
    wait "$primary" || code=$?
    primary=
    exec 3<&-
    [[ $code == 0 ]] || fail "udp_echo exited with $code, not 0"
    [[ $answered == "$sent" ]] || fail "the workers answered $answered datagrams, $sent were sent"
}

run_with shared 127.0.0.1
run_with reuseport 127.0.0.1
if "$python" -c 'import socket; socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).bind(("::1", 0))' 2>/dev/null; then
    run_with shared ::1
else
    echo "--- skipped IPv6: this machine has no ::1"
fi
echo "PASS"
