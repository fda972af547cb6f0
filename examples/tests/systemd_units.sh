#!/usr/bin/env bash
# deploy/systemd's units, checked by systemd 252's own systemd-analyze verify (offline: systemd
# need not be PID 1), their ExecStart pointed at the http_server built here; then run as
# systemd would run them: the service's ExecStart under systemd-socket-activate with the socket
# unit's address and FileDescriptorName, NOTIFY_SOCKET and WATCHDOG_USEC set and read by a
# stand-in for systemd. It hears READY=1 once the workers serve (and a client is answered),
# RELOADING=1 and READY=1 around ExecReload's SIGHUP, WATCHDOG=1; after a binary upgrade
# (SIGUSR2), MAINPID= of the new primary from the old one, which then exits 0 without a word
# of stopping; and STOPPING=1 from the new primary at SIGTERM (KillMode=mixed signals the
# main process alone), after which its output ends. Each datagram is printed with its
# sender's pid, as systemd sees it.
#   systemd_units.sh <path to http_server>
set -euo pipefail
server=$1
units=$(cd "$(dirname "$0")/../../deploy/systemd" && pwd)
program=python3
source "$(dirname "$0")/driver.sh"
note_line() { :; }
for tool in systemd-analyze systemd-socket-activate; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh --test installs systemd)"
done

mkdir "$dir/units"
cp "$units/cluster-http.service" "$units/cluster-http.socket" "$dir/units/"
sed -i "s|^ExecStart=/usr/local/bin/http_server |ExecStart=$server |" "$dir/units/cluster-http.service"
grep -q "^ExecStart=$server " "$dir/units/cluster-http.service" || fail "the service's ExecStart is not /usr/local/bin/http_server ..."
verified=0
(cd "$dir/units" && systemd-analyze verify --man=no ./cluster-http.socket ./cluster-http.service) >"$dir/verify" 2>&1 ||
    verified=$?
cat "$dir/verify"
[[ $verified == 0 && ! -s $dir/verify ]] || fail "systemd-analyze verify: exit code $verified, or warnings above"

setting() { sed -n "s/^$2=//p" "$dir/units/$1"; }
[[ $(setting cluster-http.service Type) == notify ]] || fail "Type= is not notify"
[[ $(setting cluster-http.service NotifyAccess) == all ]] || fail "NotifyAccess= is not all (an upgraded primary has a new pid)"
[[ $(setting cluster-http.service KillMode) == mixed ]] || fail "KillMode= is not mixed"
[[ $(setting cluster-http.service ExecReload) == '/bin/kill -HUP $MAINPID' ]] || fail "ExecReload= does not send SIGHUP"
[[ -n $(setting cluster-http.service WatchdogSec) ]] || fail "no WatchdogSec="
name=$(setting cluster-http.socket FileDescriptorName)
exec_start=$(setting cluster-http.service ExecStart)
[[ $exec_start == *" --fd $name"* ]] || fail "ExecStart= ($exec_start) does not serve the socket named $name"

# systemd's side: the notification socket, each datagram printed on one line.
start -c '
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data, ancillary, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next(struct.unpack("iII", c[2][:12])[0] for c in ancillary if c[1] == socket.SCM_CREDENTIALS)
    d = data.decode()
    print(f"notify[{pid}]: " + d.replace("\n", " | "), flush=True)
    if d.startswith("STOPPING=1"):
        break' "$dir/notify"
expect '^bound$'

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
read -r -a command <<<"${exec_start/--workers 0/--workers 2}"
mkfifo "$dir/service"
systemd-socket-activate -l "127.0.0.1:$port" --fdname="$name" -E NOTIFY_SOCKET="$dir/notify" -E WATCHDOG_USEC=2000000 \
    "${command[@]}" >"$dir/service" 2>&1 &
service=$!
trap 'kill -KILL "$service" 2>/dev/null || true; [[ -n $primary ]] && kill -KILL "$primary" 2>/dev/null; rm -rf "$dir"' EXIT
exec 6<"$dir/service"
listening=
while IFS= read -r -t 20 -u 6 line; do
    echo "$line"
    if [[ $line == "Listening on 127.0.0.1:$port as 3." ]]; then listening=1 && break; fi
done
[[ -n $listening ]] || fail "systemd-socket-activate did not listen on 127.0.0.1:$port"

# GET $1: `reply` is the whole answer.
get() {
    exec 4<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n' "$1" >&4
    reply=$(timeout 10 cat <&4) || true
    exec 4<&-
}

# Until both workers answered (round_robin: once both listen).
until_both_answer() {
    declare -A pids=()
    local tries
    for ((tries = 0; tries < 100 && ${#pids[@]} < 2; ++tries)); do
        get /pid
        pids[${reply#*$'\r\n\r\n'}]=1
    done
    ((${#pids[@]} == 2)) || fail "not both workers answered: ${!pids[*]}"
}

# The first connection starts the service; it is answered once the workers serve.
get /
[[ $reply == *$'\r\n\r\nHello, World!' ]] || fail "the first request got '$reply'"
expect '^notify\[[0-9]+\]: WATCHDOG=1$'
expect '^notify\[[0-9]+\]: READY=1 \| STATUS=2 workers, 0 restarts$'

kill -HUP "$service"  # ExecReload
expect '^notify\[[0-9]+\]: RELOADING=1 \| MONOTONIC_USEC=[0-9]+ \| STATUS=2 workers, 0 restarts, reloading 0/2$'
expect '^notify\[[0-9]+\]: READY=1 \| STATUS=2 workers, 0 restarts$'

until_both_answer
kill -USR2 "$service"  # a binary upgrade: the new primary becomes the service's main process
expect "^notify\[$service\]: MAINPID=([0-9]+)\$"
successor=${BASH_REMATCH[1]}
[[ $successor != "$service" ]] || fail "MAINPID= names the old primary"
code=0
wait "$service" || code=$?
[[ $code == 0 ]] || fail "the primary that handed over exited with $code, not 0"
until_both_answer
kill -TERM "$successor"  # systemctl stop, KillMode=mixed: the main process alone
# The stand-in ends at the first STOPPING=1: had the old primary said it, this would not match.
expect "^notify\\[$successor\\]: STOPPING=1 \\| STATUS=stopping\$"
wait "$primary"
primary=
output=$(cat <&6)  # until the new primary and its workers are gone
echo "$output"
grep -q "^Primary $successor stopped: exit code 0\$" <<<"$output" || fail "the new primary did not stop with exit code 0"
if grep '^cluster: ' <<<"$output" | grep -v '^cluster: upgrade: '; then fail "the service complained"; fi
echo "PASS"
