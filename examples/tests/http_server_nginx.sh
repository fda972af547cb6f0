#!/usr/bin/env bash
# http_server behind real nginx (deploy/nginx/cluster.conf, started by scripts/nginx.sh on
# loopback): two instances standing for two hosts, A on 127.0.0.2:P and B on 127.0.0.3:P,
# 2 workers each. Under a client load through nginx, the operator rolling-reloads A
# (SIGHUP), upgrades B's primary twice in a row (SIGUSR2: a new primary takes over its
# sockets, the old one drains and exits), SIGKILLs A's primary (its workers follow it) and
# starts A again on the same address. Not one request may fail at the client: each must
# get 200 and the whole 13-byte body. Every step waits for a line the servers print, an
# exit or an end of output (each wait bounded), never for a fixed time.
#   http_server_nginx.sh <path to http_server>
set -euo pipefail
program=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
nginx_sh=$root/scripts/nginx.sh

clients=4      # client loops, each one curl at a time on one kept-alive connection
batch=200      # requests per curl
max_batches=150  # per loop: the load is bounded however long the steps take

dir=$(mktemp -d)
declare -A primaries=()  # pids of the primaries that may still run
client_pids=()
# On the way out, whatever happened: the client loops end once their curl does, which is
# soon with nginx gone; the workers follow their primaries.
cleanup() {
    local pid
    touch "$dir/stop"
    for pid in "${!primaries[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    "$nginx_sh" stop "$dir/nginx" || true
    for pid in "${client_pids[@]}"; do
        timeout 10 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [[ -s $dir/nginx/error.log ]] && { echo "nginx's error log, its end:" >&2; tail -40 "$dir/nginx/error.log" >&2; }
    exit 1
}

command -v curl >/dev/null || fail "curl not found (scripts/install-deps.sh --test installs it)"

declare -A name_of=([3]=A [4]=B)  # instance A's output is read on fd 3, B's on fd 4
declare -A workers_of=()          # "A pid" → 1: every worker A ever started
declare -A started=()             # fd → workers started since the instance started

# Starts an instance ($1: A or B) with the options that follow, its output (the primaries'
# and workers', stdout and stderr) readable on its fd; sets `pid`.
start_instance() {
    local name=$1 fd=3
    [[ $name == B ]] && fd=4
    shift
    rm -f "$dir/$name.out"
    mkfifo "$dir/$name.out"
    "$program" --workers 2 "$@" >"$dir/$name.out" 2>&1 &
    pid=$!
    primaries[$pid]=1
    started[$fd]=0
    eval "exec $fd<\"\$dir/$name.out\""
}

note_line() {  # fd line
    if [[ $2 =~ ^Worker\ ([0-9]+)\ started$ ]]; then
        workers_of["${name_of[$1]} ${BASH_REMATCH[1]}"]=1
        started[$1]=$((started[$1] + 1))
    fi
    [[ $2 =~ ^cluster:\ upgrade\ (refused|rolled\ back): || $2 =~ ^Giving\ up ]] && fail "${name_of[$1]}: $2"
    return 0
}

# Echoes instance output from fd $1 up to the first line matching $2 (an ERE); BASH_REMATCH
# then holds that line's match.
expect() {
    local fd=$1 line
    while IFS= read -r -t 20 -u "$fd" line; do
        echo "${name_of[$fd]}| $line"
        note_line "$fd" "$line"
        [[ $line =~ $2 ]] && return 0
    done
    fail "${name_of[$fd]}: no line matching '$2'"
}

# Echoes the rest of fd $1's output until every process writing it has exited.
expect_end() {
    local line
    while IFS= read -r -t 20 -u "$1" line; do
        echo "${name_of[$1]}| $line"
    done
    (($? > 128)) && fail "${name_of[$1]}: output still open 20 s after its primary died"
    eval "exec $1<&-"
}

gone() { [[ ! -e /proc/$1 ]] || [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) == Z ]]; }

# Waits (10 s at most) until process $1 has exited.
until_gone() {
    for _ in {1..200}; do
        gone "$1" && return 0
        sleep 0.05
    done
    fail "process $1 still runs 10 s after it was told to stop"
}

until_workers() {  # fd count
    while ((started[$1] < $2)); do expect "$1" '^Worker [0-9]+ started$'; done
}

# A loopback port nothing uses, below the ephemeral range so no outgoing connection takes it.
free_port() {
    local low p
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range
    ((low > 12000)) || low=61000
    for _ in {1..200}; do
        p=$((10000 + RANDOM % (low - 10000)))
        [[ -z $(ss -Htan "sport = :$p") ]] && { echo "$p"; return; }
    done
    fail "no free port found"
}

# --- the client load: every request's outcome is one line, "<status> <body bytes>" -------
client_loop() {  # index
    local urls=() i
    for ((i = 0; i < batch; i++)); do urls+=(-o /dev/null "http://127.0.0.1:$nginx_port/"); done
    for ((i = 0; i < max_batches; i++)); do
        [[ -e $dir/stop ]] && return 0
        # A request curl did not finish prints nothing: it counts as failed below.
        timeout 60 curl -s --connect-timeout 5 --max-time 20 -w '%{http_code} %{size_download}\n' \
            "${urls[@]}" >>"$dir/client.$1" || true
        echo "$batch" >>"$dir/sent.$1"
    done
}
answered() { cat "$dir"/client.* 2>/dev/null | wc -l; }

# Waits (20 s at most) until $1 more requests than now are answered.
until_answered() {
    local target=$(($(answered) + $1))
    for _ in {1..400}; do
        (($(answered) >= target)) && return 0
        sleep 0.05
    done
    fail "the load stalled: fewer than $1 requests answered in 20 s"
}

# Runs a step ("$@") and checks that the load went on through it.
step() {
    local before after
    echo "--- $1"
    before=$(answered)
    "${@:2}"
    until_answered 100
    after=$(answered)
    echo "    $((after - before)) requests answered through nginx during it"
}

# --- the steps ---------------------------------------------------------------------------
reload_a() {
    kill -HUP "$a"
    expect 3 '^Reload done: 2 workers replaced$'
}

# SIGUSR2 to B's primary: the new primary announces itself in the old one's line, and the
# old one exits.
upgrade_b() {
    local old=$b code=0
    kill -USR2 "$old"
    expect 4 "^cluster: upgrade: primary ([0-9]+) is ready; primary $old stops$"
    b=${BASH_REMATCH[1]}
    primaries[$b]=1
    until_gone "$old"
    if [[ -n ${first_b:-} && $old == "$first_b" ]]; then
        wait "$old" || code=$?  # only the first B is this script's child
        [[ $code == 0 ]] || fail "B's primary $old exited with $code after the upgrade, not 0"
    fi
    unset "primaries[$old]"
    echo "    B's primary is now $b"
}

# SIGKILL to A's primary: its output ends once its workers have followed it; a new A then
# listens on the same address.
kill_and_restart_a() {
    local code=0 key
    kill -KILL "$a"
    wait "$a" || code=$?
    unset "primaries[$a]"
    [[ $code == 137 ]] || fail "A's primary exited with $code, not 137 (SIGKILL)"
    expect_end 3
    for key in "${!workers_of[@]}"; do
        [[ $key == A\ * ]] && until_gone "${key#A }"
    done
    start_instance A --host 127.0.0.2 --port "$port"
    a=$pid
    expect 3 "^Primary $a running$"
    expect 3 "^Listening on http://127\.0\.0\.2:$port "
    until_workers 3 2
}

# SIGTERM: the primary's workers print their counts and it exits 0. `wait` only for A's,
# this script's child; B's current primary is the upgrade's.
stop_instance() {  # fd pid
    kill -TERM "$2"
    expect "$1" "^Primary $2 stopped: exit code 0$"
    until_gone "$2"
    unset "primaries[$2]"
}

start_instance A --host 127.0.0.2 --port 0
a=$pid
expect 3 "^Primary $a running$"
expect 3 '^Listening on http://127\.0\.0\.2:([0-9]+) '
port=${BASH_REMATCH[1]}
until_workers 3 2
start_instance B --host 127.0.0.3 --port "$port"
b=$pid
first_b=$b
expect 4 "^Primary $b running$"
expect 4 "^Listening on http://127\.0\.0\.3:$port "
until_workers 4 2

nginx_port=$(free_port)
"$nginx_sh" start "$dir/nginx" --port "$nginx_port" --backends "127.0.0.2:$port,127.0.0.3:$port" >/dev/null
echo "nginx on 127.0.0.1:$nginx_port in front of A (127.0.0.2:$port) and B (127.0.0.3:$port)"

for ((c = 0; c < clients; c++)); do
    client_loop "$c" &
    client_pids+=($!)
done
until_answered 200

step "SIGHUP to A: a rolling reload" reload_a
step "SIGUSR2 to B: a binary upgrade" upgrade_b
step "SIGUSR2 to B again: a second upgrade in a row" upgrade_b
step "SIGKILL to A's primary, and A started again on 127.0.0.2:$port" kill_and_restart_a

touch "$dir/stop"
for pid in "${client_pids[@]}"; do wait "$pid"; done
client_pids=()
stop_instance 3 "$a"
wait "$a" || fail "A exited with $?"
stop_instance 4 "$b"
"$nginx_sh" stop "$dir/nginx"

sent=$(cat "$dir"/sent.* | awk '{ n += $1 } END { print n + 0 }')
ok=$(cat "$dir"/client.* | grep -c '^200 13$' || true)
retried=$(grep -c , "$dir/nginx/access.log" || true)
echo "$sent requests through nginx, $ok answered 200 with the whole body, $((sent - ok)) failed;" \
    "$retried retried on the other host by nginx, for these reasons:"
sed -nE 's/.*\] [0-9#]+: \*[0-9]+ (.*) while .*/\1/p' "$dir/nginx/error.log" | sort | uniq -c
for host in 127.0.0.2 127.0.0.3; do
    grep -q " $host:$port" "$dir/nginx/access.log" || fail "nginx sent no request to $host:$port"
done
if ((ok != sent)); then
    cat "$dir"/client.* | grep -v '^200 13$' | sort | uniq -c >&2
    fail "$((sent - ok)) of $sent requests failed"
fi
echo "PASS"
