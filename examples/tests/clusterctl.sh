#!/usr/bin/env bash
# clusterctl against http_server --control, as an operator uses it: status as a table and as
# JSON (a workers array), scale 3 and back to 1 (scale 0 and 100000 refused with the limit),
# reload, logs following two workers' lines, nobody refused (at connect, and by the primary
# itself once the file's mode lets it in), top drawn in a terminal under tmux and read back
# with capture-pane, top on a pipe, stop; then the socket file is gone and clusterctl says so.
# Every step waits for a line, an answer or tmux's signal, never for a fixed time.
#   clusterctl.sh <path to http_server> <path to clusterctl>
set -euo pipefail
program=$1
clusterctl=$2
source "$(dirname "$0")/driver.sh"
started=0
note_line() { [[ $1 =~ ^Worker\ [0-9]+\ started$ ]] && started=$((started + 1)) || true; }

socket=$dir/control.sock
ctl() { "$clusterctl" --socket "$socket" "$@"; }
workers_in_json() { python3 -c 'import json,sys; o=json.load(sys.stdin); assert o["ok"]; print(len(o["workers"]))'; }

start --workers 2 --port 0 --control "$socket"
expect '^Listening on '
while ((started < 2)); do expect '^Worker [0-9]+ started$'; done

table=$(ctl status)
echo "$table"
[[ $(grep -c ' ready ' <<<"$table") == 2 ]] || fail "status does not list 2 ready workers"
[[ $table == primary\ * ]] || fail "status does not start with the primary's line"
[[ $(ctl status --json | workers_in_json) == 2 ]] || fail "status --json has no workers array of 2"

[[ $(ctl scale 3) == "the cluster keeps 3 workers" ]] || fail "scale 3"
[[ $(ctl status --json | workers_in_json) == 3 ]] || fail "status --json after scale 3"
for n in 0 100000; do
    code=0
    refusal=$(ctl scale $n 2>&1) || code=$?
    [[ $code == 1 && $refusal == "clusterctl: scale takes a number of workers from 1 to 1024, not $n" ]] ||
        fail "scale $n: exit $code, '$refusal'"
done

[[ $(ctl reload) == "reloaded: 3 workers replaced" ]] || fail "reload"
expect '^Reload done: 3 workers replaced$'

# logs, following: scaling to 1 retires two workers, and each prints its counts as it leaves.
mkfifo "$dir/logs"
"$clusterctl" --socket "$socket" logs >"$dir/logs" &
follower=$!
exec 5<"$dir/logs"
ctl status >/dev/null  # the follower's request came first: its connection was accepted before this one
[[ $(ctl scale 1) == "the cluster keeps 1 workers" ]] || fail "scale 1"
declare -A leaving=()
while ((${#leaving[@]} < 2)); do
    IFS= read -r -t 20 -u 5 line || fail "logs: fewer than 2 workers' lines"
    echo "logs: $line"
    [[ $line =~ ^\[worker\ ([0-9]+)\]\ worker\ [0-9]+\ \(pid ]] && leaving[${BASH_REMATCH[1]}]=1
done
kill "$follower"
wait "$follower" || true
exec 5<&-

if ((EUID == 0)); then
    code=0
    denied=$(runuser -u nobody -- "$clusterctl" --socket "$socket" status 2>&1) || code=$?
    [[ $code == 1 && $denied == "clusterctl: permission denied at $socket: only the primary's user and root may use its control socket" ]] ||
        fail "nobody at connect: exit $code, '$denied'"
    chmod 755 "$dir"
    chmod 666 "$socket"
    code=0
    denied=$(runuser -u nobody -- "$clusterctl" --socket "$socket" stop 2>&1) || code=$?
    [[ $code == 1 && $denied == "clusterctl: permission denied: only uid 0 (the primary's user) and root may use this socket" ]] ||
        fail "nobody at the primary: exit $code, '$denied'"
    expect '^cluster: control socket: refused uid 65534 \(pid [0-9]+\): only uid 0 and root may use it$'
    chmod 600 "$socket"
fi

# top in a terminal: tmux's own server, a pane 100x20; the pane's output is piped to a fifo
# before top starts, so the frames are seen as they are drawn.
tmux_server=clusterctl-test-$$
tmux_() { tmux -L "$tmux_server" "$@"; }
trap '[[ -n $primary ]] && kill -KILL "$primary" 2>/dev/null; tmux -L "$tmux_server" kill-server 2>/dev/null || true; rm -rf "$dir"' EXIT
tmux_ new-session -d -s top -x 100 -y 20 \
    "tmux -L $tmux_server wait-for go; $clusterctl --socket $socket top; echo \"top exited \$?\" >$dir/top.exit"
mkfifo "$dir/pane"
tmux_ pipe-pane -t top "cat >$dir/pane"
exec 6<"$dir/pane"
tmux_ wait-for -S go
frames=0
while ((frames < 2)); do
    IFS= read -r -t 20 -u 6 line || fail "top drew no frame in the terminal"
    [[ $line == *"q quits"* ]] && frames=$((frames + 1))
done
screen=$(tmux_ capture-pane -p -t top)
echo "$screen"
grep -q '^primary [0-9]*, up ' <<<"$screen" || fail "top: no primary line on the screen"
grep -qE '^ +ID +PID +STATE +UPTIME +RESTARTS +CPU% +RSS +CONNS +MSG/S' <<<"$screen" || fail "top: no header"
[[ $(grep -cE '^ +[0-9]+ +[0-9]+ +ready ' <<<"$screen") == 1 ]] || fail "top: not one ready worker's row"
grep -q 'rates over 1s' <<<"$screen" || fail "top's second frame is not over a 1 s window"
tmux_ send-keys -t top q
# The pipe ends when the pane does, once top has exited.
timeout 20 cat <&6 >/dev/null || fail "top did not end on q"
exec 6<&-
[[ $(cat "$dir/top.exit") == "top exited 0" ]] || fail "top: $(cat "$dir/top.exit")"

# top on a pipe: plain tables, no escapes; it ends when the pipe does.
first=$(ctl top </dev/null | head -1) || true
[[ $first == primary\ * && $first != *$'\e'* ]] || fail "top on a pipe: '$first'"

[[ $(ctl stop) == "the cluster is stopping" ]] || fail "stop"
expect '^Primary [0-9]+ stopped: exit code 0$'
wait "$primary"
primary=
[[ ! -e $socket ]] || fail "the socket file outlived the primary"
code=0
gone=$(ctl status 2>&1) || code=$?
[[ $code == 1 && $gone == "clusterctl: no control socket at $socket: is the primary running, with its control socket there (--control $socket)?" ]] ||
    fail "after stop: exit $code, '$gone'"
echo "PASS"
