#!/usr/bin/env bash
# ws_bench: WebSocket chat fan-out of examples/chat beside the same chat in Node.js
# (node/chat.js: cluster + ws + node-redis), in the same run. One redis-server on loopback;
# for each server, 2 instances x --workers workers on 127.0.0.1 and 127.0.0.2 sharing it;
# ws_bench's clients (--clients on each instance) send stamped messages that every client
# must receive exactly once. Figures: frames delivered per second with --window messages in
# flight, and p50/p99 latency at --rate messages per second, from a sender's send to the
# kernel's receive timestamp in each receiving client's socket: not to when ws_bench, one
# process standing for all the clients, has read it (it prints that too, as read_p99_ms). Beside
# them, for information, the p99 of each message's first delivery alone and of those to the
# other instance's clients. Ends with one JSON object per figure, one per line, as every
# benchmark here does.
#
#   benchmarks/ws_bench.sh [--chat PATH] [--bench PATH] [--build-dir DIR] [--rounds N]
#                          [--workers N] [--clients N] [--senders N] [--messages N]
#                          [--window N] [--paced N] [--rate R] [--size B] [--timeout S]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

usage() {
    sed -n '2,16s/^# \{0,1\}//p' "$0"
    cat <<EOF

  --chat PATH       the chat server under test (default: build examples/chat in --build-dir, Release)
  --bench PATH      the ws_bench client program (default: build it in --build-dir, Release)
  --build-dir DIR   where to build them (default: $root/build/bench)
  --rounds N        rounds, each server once per round; each figure is the median (default 3)
  --workers N       workers of each instance (default 2)
  --clients N       WebSocket clients on each instance (default 50)
  --senders N       of those clients, how many send, spread over both instances (default 4)
  --messages N      messages of the throughput phase (default 2000)
  --window N        at most N of them not yet delivered to every client (default 16)
  --paced N         messages of the latency phase (default 1000)
  --rate R          messages per second in the latency phase (default 200)
  --size B          bytes per message (default 64)
  --timeout S       seconds each phase may take at most (default 60)
EOF
}

chat=
bench=
build_dir=$root/build/bench
rounds=3
workers=2
clients=50
senders=4
messages=2000
window=16
paced=1000
rate=200
size=64
timeout=60
while (($#)); do
    case $1 in
        --chat) chat=$2; shift 2 ;;
        --bench) bench=$2; shift 2 ;;
        --build-dir) build_dir=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --clients) clients=$2; shift 2 ;;
        --senders) senders=$2; shift 2 ;;
        --messages) messages=$2; shift 2 ;;
        --window) window=$2; shift 2 ;;
        --paced) paced=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "ws_bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for n in "$rounds" "$workers" "$clients" "$senders" "$messages" "$window" "$paced" "$rate" "$size" "$timeout"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "ws_bench: '$n' is not a positive whole number" >&2; exit 2; }
done

die() { echo "ws_bench: $*" >&2; exit 1; }

# --- processes: every server instance and redis-server runs in its own session, so that it
# and its workers form one process group that cleanup can end whatever happened. --------
tmp=$(mktemp -d -t ws_bench.XXXXXX)
declare -A running=()  # pid of each process group leader still up
client_pid=

cleanup() {
    local pid
    if [[ -n $client_pid ]]; then
        kill -KILL "$client_pid" 2>/dev/null || true
        wait "$client_pid" 2>/dev/null || true
    fi
    for pid in "${!running[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    ((${#running[@]})) && sleep 0.5
    for pid in "${!running[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
# The EXIT trap runs on these too once the script exits through them.
trap 'exit 130' INT
trap 'exit 143' TERM

command -v node >/dev/null || die "node not found (Debian: apt-get install nodejs node-ws node-redis)"
command -v redis-server >/dev/null || die "redis-server not found (Debian: apt-get install redis-server)"
command -v redis-cli >/dev/null || die "redis-cli not found (Debian: apt-get install redis-tools)"
command -v ss >/dev/null || die "ss (iproute2) not found"
# Debian's node-ws and node-redis live there, out of node's own search path.
export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
node -e "require('ws'); require('redis')" 2>/dev/null ||
    die "node cannot load ws and redis (Debian: apt-get install node-ws node-redis)"

# --- the programs: optimised, as every benchmark here is -----------------------------
targets=()
[[ -n $bench ]] || targets+=(ws_bench)
[[ -n $chat ]] || targets+=(chat)
if ((${#targets[@]})); then
    echo "building ${targets[*]} (Release) in $build_dir"
    build_log=$tmp/build.log
    if ! { cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCLUSTER_BUILD_TESTS=OFF \
               -DCLUSTER_BUILD_EXAMPLES=ON -DCLUSTER_BUILD_BENCHMARKS=ON &&
           cmake --build "$build_dir" --target "${targets[@]}" -j "$(nproc)"; } >"$build_log" 2>&1; then
        cat "$build_log" >&2
        die "building ${targets[*]} failed (without examples/chat, pass --chat PATH)"
    fi
    [[ -n $bench ]] || bench=$build_dir/benchmarks/ws_bench
    if [[ -z $chat ]]; then
        chat=$build_dir/examples/chat/chat
        [[ -x $chat ]] || chat=$build_dir/examples/chat
    fi
fi
[[ -x $bench && -f $bench ]] || die "no ws_bench at '$bench'"
[[ -x $chat && -f $chat ]] || die "no chat server at '$chat' (pass --chat PATH)"

# A free port below the ephemeral range, on every loopback address (ss -a sees every
# state, TIME_WAIT included), so that no client connection ever holds it.
free_port() {
    local low p
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range
    ((low > 12000)) || low=61000
    for _ in {1..200}; do
        p=$((10000 + RANDOM % (low - 10000)))
        if [[ -z $(ss -Htan "sport = :$p") ]]; then
            echo "$p"
            return
        fi
    done
    die "no free port found"
}

# Starts a program in a session of its own ($1: its log, then the command); sets started_pid.
# setsid does not fork here (a background job of a script is no group leader), so the pid
# is the program's own and its process group's.
start_group() {
    local log=$1
    shift
    : >"$log"
    setsid "$@" </dev/null >"$log" 2>&1 &
    started_pid=$!
    running[$started_pid]=1
}

# Stops a process group the way its operator would (SIGTERM), waits (10 s at most) for its
# leader, then ends anything left in the group.
stop_group() {  # pid name log
    local pid=$1 status=0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in {1..100}; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "warning: $2 did not stop within 10 s of SIGTERM; killed" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    wait "$pid" || status=$?
    for _ in {1..20}; do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        echo "warning: $2 left processes behind after its primary exited; killed them" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    unset "running[$pid]"
    ((status == 0)) || { echo "warning: $2 exited with status $status; its output:" >&2; cat "$3" >&2; }
}

# --- the one redis-server of the run -----------------------------------------------------
redis_port=$(free_port)
mkdir -p "$tmp/redis"
start_group "$tmp/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$tmp/redis" \
    --save '' --appendonly no --daemonize no
redis_pid=$started_pid
for _ in {1..100}; do
    [[ $(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null) == PONG ]] && break
    kill -0 "$redis_pid" 2>/dev/null || { cat "$tmp/redis.log" >&2; die "redis-server exited as it started"; }
    sleep 0.1
done
[[ $(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null) == PONG ]] ||
    { cat "$tmp/redis.log" >&2; die "redis-server did not answer within 10 s"; }

# --- one measurement: both instances of a server, ws_bench against them ------------------
hosts=(127.0.0.1 127.0.0.2)

start_instance() {  # server host port log
    local command=("$chat")
    [[ $1 == node ]] && command=(node "$here/node/chat.js")
    start_group "$4" "${command[@]}" --host "$2" --port "$3" --workers "$workers" --redis "127.0.0.1:$redis_port"
}

# Waits (15 s at most) until the instance listens. ws_bench's warm-up then waits until
# every worker and every instance's Redis subscription delivers.
wait_listening() {  # pid host port log
    for _ in {1..150}; do
        kill -0 "$1" 2>/dev/null || { cat "$4" >&2; die "the server on $2:$3 exited as it started"; }
        [[ -n $(ss -Htln "src $2:$3") ]] && return
        sleep 0.1
    done
    cat "$4" >&2
    die "nothing listened on $2:$3 within 15 s"
}

# A field (deliveries_per_s, p50_ms, ...) of one of ws_bench's lines.
field() { sed -nE "s/.* $1=([0-9.]+).*/\\1/p" <<<"$2"; }

# results: server, round, deliveries/s, then of the paced phase: p50 ms, p99 ms, and the p99 of
# each message's first delivery (ours: the sender's worker to one of its own clients, a wake-up
# after the send; Node's chat passes every message through its primary first) and of the
# deliveries to the other instance's clients (the longest way, through Redis).
results=$tmp/results.tsv
: >"$results"

measure() {  # server round
    local what=$1 round=$2 i pids=() ports=() logs=() list=() out=$tmp/$1-$2.out status=0 rate_line paced_line
    for i in "${!hosts[@]}"; do
        ports+=("$(free_port)")
        logs+=("$tmp/$what-$round-$i.log")
        start_instance "$what" "${hosts[$i]}" "${ports[$i]}" "${logs[$i]}"
        pids+=("$started_pid")
        list+=("${hosts[$i]}:${ports[$i]}")
    done
    for i in "${!hosts[@]}"; do
        wait_listening "${pids[$i]}" "${hosts[$i]}" "${ports[$i]}" "${logs[$i]}"
    done
    "$bench" --targets "$(IFS=,; echo "${list[*]}")" --clients "$clients" --senders "$senders" \
        --messages "$messages" --window "$window" --paced "$paced" --rate "$rate" --size "$size" \
        --timeout "$timeout" >"$out" 2>&1 &
    client_pid=$!
    wait "$client_pid" || status=$?
    client_pid=
    for i in "${!hosts[@]}"; do
        stop_group "${pids[$i]}" "$what on ${list[$i]}" "${logs[$i]}"
    done
    if ((status != 0)); then
        cat "$out" >&2
        for i in "${!hosts[@]}"; do echo "--- $what on ${list[$i]}:" >&2; cat "${logs[$i]}" >&2; done
        die "ws_bench failed against $what (exit status $status)"
    fi
    rate_line=$(grep '^throughput:' "$out")
    paced_line=$(grep '^paced:' "$out")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$what" "$round" "$(field deliveries_per_s "$rate_line")" \
        "$(field p50_ms "$paced_line")" "$(field p99_ms "$paced_line")" "$(field first_p99_ms "$paced_line")" \
        "$(field remote_p99_ms "$paced_line")" >>"$results"
    printf '  %-6s %10.0f deliveries/s (p99 %.2f ms)   at %s msg/s: p50 %.3f ms, p99 %.3f ms (first %.3f, remote %.3f)\n' \
        "$what" "$(field deliveries_per_s "$rate_line")" "$(field p99_ms "$rate_line")" "$rate" \
        "$(field p50_ms "$paced_line")" "$(field p99_ms "$paced_line")" "$(field first_p99_ms "$paced_line")" \
        "$(field remote_p99_ms "$paced_line")"
}

node_version=$(node --version)
ws_version=$(node -p "require('ws/package.json').version")
redis_version=$(node -p "require('redis/package.json').version")
total=$((clients * ${#hosts[@]}))
echo "ws_bench: $(nproc) CPUs; 2 instances x $workers workers per server, one redis-server; $rounds rounds"
echo "  chat: $chat"
echo "  node: $node_version, cluster + ws $ws_version + node-redis $redis_version ($here/node/chat.js)"
echo "  clients: $clients per instance ($total), $senders senders, $size-byte messages; throughput:"
echo "  $messages messages, at most $window in flight; latency: $paced messages at $rate/s"
echo "The clients run on the same CPUs as the servers and take their share of them, the same"
echo "for both servers. Each round runs both, in a rotated order."
echo

servers=(ours node)
for ((r = 1; r <= rounds; r++)); do
    echo "round $r/$rounds"
    for ((i = 0; i < ${#servers[@]}; i++)); do
        measure "${servers[$(((i + r - 1) % ${#servers[@]}))]}" "$r"
    done
done
stop_group "$redis_pid" redis-server "$tmp/redis.log"

# --- summary: medians over the rounds ---------------------------------------------------
median_of() {  # server field (3: deliveries/s, 4: p50, 5: p99, 6: first p99, 7: remote p99)
    awk -F'\t' -v s="$1" -v f="$2" '$1 == s { v[++n] = $f }
        END {
            for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            printf "%.6g\n", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }' "$results"
}

figure() {  # name value unit baseline baseline_value better target
    awk -v n="$1" -v v="$2" -v u="$3" -v b="$4" -v bv="$5" -v better="$6" -v t="$7" 'BEGIN {
        printf "{\"name\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", \"baseline\": \"%s\", \"baseline_value\": %.6g, \"ratio\": %.4g, \"better\": \"%s\", \"target\": \"%s\"}\n", n, v, u, b, bv, (bv > 0 ? v / bv : 0), better, t
    }'
}

echo
printf '%-6s %14s %12s %12s %14s %15s   (median of %s rounds)\n' server deliveries/s "p50 ms" "p99 ms" \
    "first p99 ms" "remote p99 ms" "$rounds"
for s in "${servers[@]}"; do
    printf '%-6s %14.0f %12.3f %12.3f %14.3f %15.3f\n' "$s" "$(median_of "$s" 3)" "$(median_of "$s" 4)" \
        "$(median_of "$s" 5)" "$(median_of "$s" 6)" "$(median_of "$s" 7)"
done
echo
node_setup="Node.js $node_version cluster + ws $ws_version + node-redis $redis_version (benchmarks/node/chat.js), 2 instances x $workers workers"
figure ws_fanout_vs_node "$(median_of ours 3)" "deliveries/s" \
    "$node_setup; $total clients, $messages messages, $window in flight" "$(median_of node 3)" higher "ratio >= 3"
figure ws_p99_vs_node "$(median_of ours 5)" "ms (p99)" \
    "$node_setup; $total clients, $rate messages/s" "$(median_of node 5)" lower "ratio <= 0.33"
figure ws_p50_vs_node "$(median_of ours 4)" "ms (p50)" \
    "$node_setup; $total clients, $rate messages/s" "$(median_of node 4)" lower "none (information)"
figure ws_first_delivery_p99_vs_node "$(median_of ours 6)" "ms (p99)" \
    "$node_setup; $total clients, $rate messages/s; each message's first delivery" "$(median_of node 6)" lower \
    "none (information)"
