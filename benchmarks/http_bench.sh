#!/usr/bin/env bash
# http_bench: requests per second of examples/http_server (2 workers) under each schedule,
# beside nginx (worker_processes 2, reuseport deferred: TCP_DEFER_ACCEPT, as http_server sets it)
# and Node.js cluster + http (2 workers, which cannot defer accepts), and of
# examples/beast_server (Boost.Beast clustered by cluster::asio) beside Beast alone
# (benchmarks/beast_alone: an io_context per thread, SO_REUSEPORT), all driven by wrk in the
# same run: first over keep-alive connections, then with a new connection per request
# (Connection: close). Also each schedule's connections per worker.
# With --nginx-upgrade S, then http_server (round_robin) behind nginx (scripts/nginx.sh)
# during a binary upgrade of its primary (SIGUSR2 halfway through S seconds of wrk): the
# failed requests, and the p99 latency against S seconds without an upgrade. With
# --affinity on (or off,on), http_server runs with --cpu-affinity, beside nginx with
# worker_cpu_affinity auto.
# Ends with one JSON object per figure, one per line, as every benchmark here does.
#
#   benchmarks/http_bench.sh [--server PATH] [--build-dir DIR] [--compiler CXX] [--duration S]
#                            [--rounds N] [--warmup S] [--connections N] [--threads N] [--workers N]
#                            [--schedules a,b,...] [--beast-schedules a,b,...] [--modes keepalive,close]
#                            [--affinity off,on]
#                            [--nginx-upgrade S [--nginx-upgrade-only]]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

usage() {
    sed -n '2,20s/^# \{0,1\}//p' "$0"
    cat <<EOF

  --server PATH       http_server binary (default: build it in --build-dir, Release); beast_server
                      and beast_alone are taken from beside it (examples/, benchmarks/) when there
  --build-dir DIR     where to build them (default: $root/build/bench)
  --compiler CXX      the C++ compiler of that build (default: CMake's choice)
  --duration S        seconds wrk measures each server, each round (default 3)
  --rounds N          rounds; each figure is the median over them (default 3)
  --warmup S          seconds of unmeasured load on each server before (default 1)
  --connections N     wrk connections (default 64)
  --threads N         wrk threads (default 2)
  --workers N         workers of every server (default 2)
  --schedules LIST    http_server schedules (default round_robin,shared,reuseport,sticky,least_connections)
  --beast-schedules LIST  beast_server schedules (default round_robin,reuseport); none: no Beast rows
  --modes LIST        keepalive, close or both (default keepalive,close)
  --affinity LIST     off, on or both (default off): on pins each worker to a CPU, http_server
                      by --cpu-affinity and nginx by worker_cpu_affinity auto (node cannot)
  --nginx-upgrade S   also the run through nginx during an upgrade, S seconds of wrk each
                      (with and without the upgrade); 0: not (default)
  --nginx-upgrade-only  that run alone, without the comparison of servers
EOF
}

server=
build_dir=$root/build/bench
compiler=
beast_schedules=round_robin,reuseport
duration=3
rounds=3
warmup=1
connections=64
threads=2
workers=2
schedules=round_robin,shared,reuseport,sticky,least_connections
modes=keepalive,close
affinities=off
upgrade_duration=0
compare=1
while (($#)); do
    case $1 in
        --server) server=$2; shift 2 ;;
        --build-dir) build_dir=$2; shift 2 ;;
        --compiler) compiler=$2; shift 2 ;;
        --beast-schedules) beast_schedules=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --workers) workers=$2; shift 2 ;;
        --schedules) schedules=$2; shift 2 ;;
        --modes) modes=$2; shift 2 ;;
        --affinity) affinities=$2; shift 2 ;;
        --nginx-upgrade) upgrade_duration=$2; shift 2 ;;
        --nginx-upgrade-only) compare=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "http_bench: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for n in "$duration" "$rounds" "$warmup" "$connections" "$threads" "$workers"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "http_bench: '$n' is not a positive whole number" >&2; exit 2; }
done
[[ $upgrade_duration =~ ^[0-9]+$ ]] || { echo "http_bench: --nginx-upgrade '$upgrade_duration' is not a whole number" >&2; exit 2; }
((compare || upgrade_duration)) || { echo "http_bench: --nginx-upgrade-only needs --nginx-upgrade S" >&2; exit 2; }
IFS=, read -r -a schedule_list <<<"$schedules"
beast_list=()
[[ $beast_schedules == none ]] || IFS=, read -r -a beast_list <<<"$beast_schedules"
IFS=, read -r -a mode_list <<<"$modes"
IFS=, read -r -a affinity_list <<<"$affinities"
if ((!compare)); then
    rounds=0
    mode_list=()
fi
for m in "${mode_list[@]}"; do
    [[ $m == keepalive || $m == close ]] || { echo "http_bench: unknown mode '$m'" >&2; exit 2; }
done
for a in "${affinity_list[@]}"; do
    [[ $a == off || $a == on ]] || { echo "http_bench: unknown affinity '$a' (off or on)" >&2; exit 2; }
done

die() { echo "http_bench: $*" >&2; exit 1; }

# --- processes: every server runs in its own session, so it and its workers form one
# process group that cleanup can end whatever happened; wrk is tracked the same way. ----
tmp=$(mktemp -d -t http_bench.XXXXXX)
declare -A running=()  # pid of each server (= its process group) still up
wrk_pid=

cleanup() {
    local pid
    if [[ -n $wrk_pid ]]; then
        kill -KILL "$wrk_pid" 2>/dev/null || true
        wait "$wrk_pid" 2>/dev/null || true
    fi
    for pid in "${!running[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    ((${#running[@]})) && sleep 0.5
    for pid in "${!running[@]}"; do
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    "$root/scripts/nginx.sh" stop "$tmp/nginx-upgrade"
    rm -rf "$tmp"
}
trap cleanup EXIT
# The EXIT trap runs on these too once the script exits through them.
trap 'exit 130' INT
trap 'exit 143' TERM

# --- what the baselines need: installed from Debian's archive only when missing --------
# A package counts as present when its command is there (nginx may come from the nginx or
# nginx-full package, node from NodeSource) or dpkg says it is installed.
find_nginx() { command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true; }
missing=()
declare -A command_of=([wrk]=wrk [nginx-light]=nginx [nodejs]=node)
for p in wrk nginx-light nodejs; do
    if [[ ${command_of[$p]} == nginx ]]; then [[ -n $(find_nginx) ]] && continue
    else command -v "${command_of[$p]}" >/dev/null && continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo=()
    ((EUID == 0)) || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
nginx_bin=$(find_nginx)
[[ -n $nginx_bin ]] || die "nginx not found after installing nginx-light"
command -v wrk >/dev/null || die "wrk not found"
command -v node >/dev/null || die "node not found"
command -v ss >/dev/null || die "ss (iproute2) not found"

# --- the servers under test: optimised, as every benchmark here is ---------------------
if [[ -z $server ]]; then
    targets=(http_server)
    ((${#beast_list[@]} == 0)) || targets+=(beast_server beast_alone)
    echo "building ${targets[*]} (Release${compiler:+, $compiler}) in $build_dir"
    build_log=$tmp/build.log
    if ! { cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCLUSTER_BUILD_TESTS=OFF \
               -DCLUSTER_BUILD_EXAMPLES=ON -DCLUSTER_BUILD_BENCHMARKS=ON ${compiler:+-DCMAKE_CXX_COMPILER=$compiler} &&
           cmake --build "$build_dir" --target "${targets[@]}" -j "$(nproc)"; } >"$build_log" 2>&1; then
        cat "$build_log" >&2
        die "building ${targets[*]} failed"
    fi
    server=$build_dir/examples/http_server
fi
[[ -x $server ]] || die "no http_server at '$server'"
beast_server=$(dirname "$server")/beast_server
beast_alone=$(dirname "$(dirname "$server")")/benchmarks/beast_alone
if ((${#beast_list[@]})); then
    [[ -x $beast_server ]] || die "no beast_server beside http_server ($beast_server)"
    [[ -x $beast_alone ]] || die "no beast_alone at $beast_alone"
fi

# A free loopback port below the ephemeral range, so that wrk's own connections (and their
# TIME_WAITs) never hold it; ss -a sees every state, TIME_WAIT included.
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

# nginx's compiled-in temp paths are under /var/lib/nginx: point each module's into the
# run's own directory so nginx starts as root or not. Only modules built in take the
# directive (a trimmed build rejects the others).
nginx_temp_paths() {
    local dir=$1 m v
    v=$("$nginx_bin" -V 2>&1)
    echo "client_body_temp_path $dir/client_body;"
    for m in proxy fastcgi uwsgi scgi; do
        [[ $v == *"--without-http_${m}_module"* ]] || echo "${m}_temp_path $dir/$m;"
    done
}

write_nginx_conf() {  # dir port [affinity]
    local dir=$1 port=$2 affinity=
    [[ ${3:-} == pinned ]] && affinity="worker_cpu_affinity auto;"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
# Written by benchmarks/http_bench.sh: the same 13-byte text/plain answer as http_server.
worker_processes $workers;
$affinity
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    $(nginx_temp_paths "$dir")
    server {
        listen 127.0.0.1:$port reuseport deferred;
        keepalive_requests 1000000;
        keepalive_timeout 600s;
        location = / {
            default_type text/plain;
            return 200 "Hello, World!";
        }
    }
}
EOF
}

# A server is a schedule name, nginx or node; "+pinned" after the first two pins its workers
# to CPUs. These give the name without it, and the flag http_server takes for it.
base_of() { echo "${1%+pinned}"; }
pinning_of() { [[ $1 == *+pinned ]] && echo pinned || true; }

# Starts one server ($1: see base_of) on $2, its output in $3; sets server_pid. setsid does
# not fork here (a background job of a script is no group leader), so the pid is the
# server's own and its process group's.
start_server() {
    local what=$1 port=$2 log=$3 base pinned
    base=$(base_of "$what")
    pinned=$(pinning_of "$what")
    : >"$log"  # before the server opens it: wait_ready reads it at once
    case $base in
        nginx)
            write_nginx_conf "$tmp/nginx-$port" "$port" "$pinned"
            setsid "$nginx_bin" -p "$tmp/nginx-$port" -c "$tmp/nginx-$port/nginx.conf" \
                -e "$tmp/nginx-$port/error.log" </dev/null >"$log" 2>&1 &
            ;;
        node) setsid node "$here/node/http_cluster.js" "$port" "$workers" </dev/null >"$log" 2>&1 & ;;
        beast_alone) setsid "$beast_alone" --threads "$workers" --port "$port" </dev/null >"$log" 2>&1 & ;;
        beast-*)
            setsid "$beast_server" --workers "$workers" --port "$port" --schedule "${base#beast-}" \
                </dev/null >"$log" 2>&1 &
            ;;
        *)
            setsid "$server" --workers "$workers" --port "$port" --schedule "$base" \
                ${pinned:+--cpu-affinity} </dev/null >"$log" 2>&1 &
            ;;
    esac
    server_pid=$!
    running[$server_pid]=1
}

# Waits (at most 15 s) until the server listens: its "Listening on" line where it prints
# one, and the listening sockets the kernel shows (one per worker under reuseport). No
# probe connection is made: it would count in the workers' connection counts.
wait_ready() {
    local what=$1 pid=$2 port=$3 log=$4 sockets=1 base
    base=$(base_of "$what")
    [[ $base == nginx || $base == reuseport || $base == beast-reuseport || $base == beast_alone ]] && sockets=$workers
    for _ in {1..150}; do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "$what exited as it started"; }
        if { [[ $base == nginx ]] || grep -q '^Listening on' "$log"; } &&
           (($(ss -Htln "sport = :$port" | wc -l) >= sockets)); then
            # http_server says it listens once its first worker does: give the others a
            # moment too, or the first connections would all be counted on that one.
            sleep 0.3
            return
        fi
        sleep 0.1
    done
    cat "$log" >&2
    die "$what did not listen on port $port within 15 s"
}

# Stops a server the way its operator would (nginx: SIGQUIT, graceful; the others:
# SIGTERM), waits for it, then ends anything left in its process group.
stop_server() {
    local what=$1 pid=$2 log=$3 sig=TERM status=0
    [[ $(base_of "$what") == nginx ]] && sig=QUIT
    kill -s "$sig" "$pid" 2>/dev/null || true
    for _ in {1..100}; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "warning: $what did not stop within 10 s of SIG$sig; killed" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    wait "$pid" || status=$?
    # Workers may still be finishing as their primary is reaped: give them a moment.
    for _ in {1..20}; do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 -- "-$pid" 2>/dev/null; then
        echo "warning: $what left processes behind after its primary exited; killed them" >&2
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    unset "running[$pid]"
    ((status == 0)) || { echo "warning: $what exited with status $status; its output:" >&2; cat "$log" >&2; }
}

# Runs wrk in the background (so a signal to this script ends it too) and waits for it.
run_wrk() {  # port seconds mode output
    local args=(-t"$threads" -c"$connections" -d"$2"s --latency)
    [[ $3 == close ]] && args+=(-H 'Connection: close')
    wrk "${args[@]}" "http://127.0.0.1:$1/" >"$4" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid" || { cat "$4" >&2; die "wrk failed"; }
    wrk_pid=
}

# wrk's latency percentile ($2, e.g. 99%) in ms from its --latency output ($1).
wrk_percentile() {
    awk -v q="$2" '$1 == q {
        v = $2 + 0
        if ($2 ~ /us$/) v /= 1000; else if ($2 ~ /ms$/) v *= 1; else if ($2 ~ /s$/) v *= 1000
        printf "%.3f", v; exit }' "$1"
}

# Socket errors plus non-2xx answers in wrk's output: a server that fails requests must
# not look fast.
wrk_errors() {
    awk '/Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
         /Non-2xx or 3xx responses:/ { n += $5 }
         END { print n + 0 }' "$1"
}

# Per-worker connection counts from the lines http_server (and http_cluster.js) print as
# they stop, largest first, comma-separated; "-" when there are none (nginx).
worker_counts() {
    local counts
    counts=$(sed -nE 's/^worker [0-9]+ \(pid [0-9]+\): ([0-9]+) connections, [0-9]+ requests.*/\1/p' "$1" |
        sort -rn | paste -sd, -)
    echo "${counts:--}"
}

label() {
    local pinned=
    [[ -n $(pinning_of "$1") ]] && pinned=", pinned"
    case $(base_of "$1") in
        nginx) echo "nginx$pinned" ;;
        node) echo "node cluster" ;;
        beast_alone) echo "Beast alone" ;;
        beast-*) echo "beast_server ${1#beast-}" ;;
        *) echo "http_server $(base_of "$1")$pinned" ;;
    esac
}

mode_label() { if [[ $1 == close ]]; then echo "Connection: close"; else echo "keep-alive"; fi; }

# results: mode, server, round, req/s, errors, p50 ms, p99 ms, per-worker counts.
results=$tmp/results.tsv
: >"$results"

measure() {  # what mode round
    local what=$1 mode=$2 round=$3 port log out rps errors p50 p99 counts
    port=$(free_port)
    log=$tmp/$what-$mode-$round.log
    out=$tmp/$what-$mode-$round.wrk
    start_server "$what" "$port" "$log"
    wait_ready "$what" "$server_pid" "$port" "$log"
    run_wrk "$port" "$warmup" "$mode" /dev/null
    run_wrk "$port" "$duration" "$mode" "$out"
    stop_server "$what" "$server_pid" "$log"
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    [[ -n $rps ]] || { cat "$out" >&2; die "no Requests/sec in wrk's output for $what"; }
    errors=$(wrk_errors "$out")
    p50=$(wrk_percentile "$out" 50%)
    p99=$(wrk_percentile "$out" 99%)
    counts=$(worker_counts "$log")
    if [[ $(base_of "$what") != nginx && $counts != - ]] && (($(tr , '\n' <<<"$counts" | wc -l) != workers)); then
        echo "warning: $what printed counts for $(tr , '\n' <<<"$counts" | wc -l) workers, not $workers" >&2
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$what" "$round" "$rps" "$errors" "$p50" "$p99" "$counts" >>"$results"
    printf '  %-10s  %-30s  %10.0f req/s  p99 %7.2f ms  errors %s  connections per worker %s\n' \
        "$mode" "$(label "$what")" "$rps" "$p99" "$errors" "$counts"
}

# --- a binary upgrade behind nginx ------------------------------------------------------
# Waits (15 s at most) for the old primary's line saying the new one is ready, in the log
# $1, and echoes the new primary's pid. A refusal, a rollback or the old primary's death
# (a binary without the upgrade dies of the signal) ends the benchmark.
until_upgraded() {  # log old-pid
    local line
    for _ in {1..150}; do
        line=$(grep -E "^cluster: upgrade( refused| rolled back|: primary [0-9]+ is ready;)" "$1" | tail -1) || true
        if [[ $line =~ ^cluster:\ upgrade:\ primary\ ([0-9]+)\ is\ ready\;\ primary\ $2\ stops$ ]]; then
            echo "${BASH_REMATCH[1]}"
            return
        fi
        [[ -z $line ]] || die "$line"
        [[ $(cut -d' ' -f3 "/proc/$2/stat" 2>/dev/null) == [RSD] ]] ||
            die "primary $2 exited at SIGUSR2: has $server the binary upgrade?"
        sleep 0.1
    done
    die "no upgrade of primary $2 within 15 s"
}

# Waits (15 s at most) until process $1 has exited (a child of this script may be left a
# zombie, for `wait`); says so if it has not.
until_exited() {
    for _ in {1..150}; do
        [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) == [RSD] ]] || return 0
        sleep 0.1
    done
    echo "warning: process $1 still runs 15 s on" >&2
}

# http_server (round_robin) alone behind nginx: wrk for $upgrade_duration s, then again
# with SIGUSR2 to the primary halfway through. The new primary (not this script's child)
# is stopped by its pid; anything left is ended with the old one's process group.
nginx_upgrade() {
    local port nginx_port log old new status=0
    port=$(free_port)
    nginx_port=$(free_port)
    log=$tmp/upgrade.log
    start_server round_robin "$port" "$log"
    old=$server_pid
    wait_ready round_robin "$old" "$port" "$log"
    "$root/scripts/nginx.sh" start "$tmp/nginx-upgrade" --port "$nginx_port" --backends "127.0.0.1:$port" >/dev/null
    run_wrk "$nginx_port" "$warmup" keepalive /dev/null
    run_wrk "$nginx_port" "$upgrade_duration" keepalive "$tmp/no-upgrade.wrk"
    p99_without=$(wrk_percentile "$tmp/no-upgrade.wrk" 99%)
    printf '  without an upgrade: %.0f req/s, p99 %.2f ms, %s failed requests\n' \
        "$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/no-upgrade.wrk")" "$p99_without" "$(wrk_errors "$tmp/no-upgrade.wrk")"
    wrk -t"$threads" -c"$connections" -d"$upgrade_duration"s --latency "http://127.0.0.1:$nginx_port/" \
        >"$tmp/upgrade.wrk" 2>&1 &
    wrk_pid=$!
    sleep "$(awk -v d="$upgrade_duration" 'BEGIN { print d / 2 }')"  # pacing: the upgrade mid-run
    kill -USR2 "$old"
    new=$(until_upgraded "$log" "$old") || exit 1
    wait "$wrk_pid" || { cat "$tmp/upgrade.wrk" >&2; die "wrk failed"; }
    wrk_pid=
    until_exited "$old"
    kill -KILL "$old" 2>/dev/null || true
    wait "$old" || status=$?
    ((status == 0)) || echo "warning: the old primary exited with status $status after the upgrade" >&2
    "$root/scripts/nginx.sh" stop "$tmp/nginx-upgrade"
    kill -TERM "$new" 2>/dev/null || true
    until_exited "$new"
    kill -KILL -- "-$old" 2>/dev/null || true
    unset "running[$old]"
    upgrade_failed=$(wrk_errors "$tmp/upgrade.wrk")
    p99_during=$(wrk_percentile "$tmp/upgrade.wrk" 99%)
    printf '  with SIGUSR2 halfway (new primary %s): %.0f req/s, p99 %.2f ms, %s failed requests\n' "$new" \
        "$(awk '/^Requests\/sec:/ { print $2 }' "$tmp/upgrade.wrk")" "$p99_during" "$upgrade_failed"
}

servers=()
for a in "${affinity_list[@]}"; do
    pin=
    [[ $a == on ]] && pin=+pinned
    for s in "${schedule_list[@]}" nginx; do servers+=("$s$pin"); done
done
servers+=(node)
for b in "${beast_list[@]}"; do servers+=("beast-$b"); done
((${#beast_list[@]} == 0)) || servers+=(beast_alone)

if ((compare)); then
    echo "http_bench: $(nproc) CPUs; $workers workers per server; wrk -t$threads -c$connections, ${duration} s per measurement after ${warmup} s of warm-up, $rounds rounds"
    echo "  http_server: $server"
    echo "  nginx: $("$nginx_bin" -v 2>&1 | sed 's/^nginx version: nginx\///'), worker_processes $workers, reuseport deferred"
    echo "  affinity: ${affinity_list[*]} (on: http_server --cpu-affinity, nginx worker_cpu_affinity auto)"
    echo "  node: $(node --version), cluster + http, $workers workers, SCHED_RR"
    if ((${#beast_list[@]})); then
        echo "  beast_server: $beast_server (Boost $(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' /usr/include/boost/version.hpp), $workers workers)"
        echo "  Beast alone: $beast_alone, $workers threads, an io_context and an SO_REUSEPORT acceptor each"
    fi
    echo "  wrk: $(wrk --version 2>&1 | head -1 | awk '{print $2}')"
    echo "wrk runs on the same CPUs as the servers and takes its share of them; that share is the"
    echo "same for every server measured, so the ratios are fair while the absolute requests/s"
    echo "are lower than a separate client machine would see. Each round runs every server once,"
    echo "in a rotated order, so drift in the machine's speed hits them all alike. Connection counts
per worker cover the warm-up and the measurement."
    echo
fi

start=$SECONDS
for ((r = 1; r <= rounds; r++)); do
    echo "round $r/$rounds"
    n=${#servers[@]}
    for mode in "${mode_list[@]}"; do
        for ((i = 0; i < n; i++)); do
            measure "${servers[$(((i + r - 1) % n))]}" "$mode" "$r"
        done
    done
done
((compare)) && echo "($((SECONDS - start)) s of measurement)"
if ((upgrade_duration)); then
    echo "http_server (round_robin, $workers workers) behind nginx (scripts/nginx.sh): wrk -t$threads -c$connections" \
        "-d${upgrade_duration}s, without and then with SIGUSR2 to its primary halfway through"
    nginx_upgrade
fi

# --- summary: medians over the rounds ---------------------------------------------------
# field ($3: 4 req/s, 6 p50, 7 p99) of (mode $1, server $2), median over the rounds.
median_of() {
    awk -F'\t' -v m="$1" -v s="$2" -v f="$3" '$1 == m && $2 == s { v[++n] = $f }
        END {
            if (!n) { print "nan"; exit }
            for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            printf "%.6g\n", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
        }' "$results"
}
# The median over the rounds of each round's max/min connections per worker; inf when a
# worker got none, "-" without counts.
fairness_of() {
    awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s && $8 != "-" {
            k = split($8, c, ","); mx = c[1]; mn = c[k]
            v[++n] = mn > 0 ? mx / mn : 1e300
        }
        END {
            if (!n) { print "-"; exit }
            for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j >= 1 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
            r = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            if (r >= 1e300) print "inf"; else printf "%.4g\n", r
        }' "$results"
}
counts_of() {  # every round's counts, "max/min" each
    awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s {
            k = split($8, c, ","); out = out (out ? " " : "") (k > 1 ? c[1] "/" c[k] : c[1])
        } END { print out }' "$results"
}
errors_of() { awk -F'\t' -v m="$1" -v s="$2" '$1 == m && $2 == s { n += $5 } END { print n + 0 }' "$results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a == a + 0) printf "%.2f", a / b; else print "-" }'; }

json_lines=()
# Appends one figure's JSON line. A value that is no number is null: "inf" (a worker got no
# connection) or "-" (no counts: the server did not print them as it stopped).
figure() {  # name value unit baseline baseline_value better target
    json_lines+=("$(awk -v n="$1" -v v="$2" -v u="$3" -v b="$4" -v bv="$5" -v better="$6" -v t="$7" 'BEGIN {
        num = v ~ /^[0-9.]+([eE][-+]?[0-9]+)?$/ ? sprintf("%.6g", v) : "null"
        r = (num == "null" || bv == 0) ? "null" : sprintf("%.4g", v / bv)
        printf "{\"name\": \"%s\", \"value\": %s, \"unit\": \"%s\", \"baseline\": \"%s\", \"baseline_value\": %.6g, \"ratio\": %s, \"better\": \"%s\", \"target\": \"%s\"}", n, num, u, b, bv, r, better, t
    }')")
}

node_version=$(node --version)
nginx_version=$("$nginx_bin" -v 2>&1 | sed 's/^nginx version: nginx\//nginx /')
for mode in "${mode_list[@]}"; do
    sfx=
    [[ $mode == close ]] && sfx=_close
    nginx_rps=$(median_of "$mode" nginx 4)
    pinned_nginx_rps=$(median_of "$mode" nginx+pinned 4)
    node_rps=$(median_of "$mode" node 4)
    echo
    echo "$(mode_label "$mode"): wrk -t$threads -c$connections -d${duration}s$([[ $mode == close ]] && echo " -H 'Connection: close'"), median of $rounds rounds"
    printf '%-30s %10s %9s %8s %8s %8s %7s %8s  %s\n' server req/s "vs nginx" "vs node" "p50 ms" "p99 ms" errors \
        max/min "connections per worker, max/min, each round"
    best='' best_rps=0 best_pinned='' best_pinned_rps=0 best_beast='' best_beast_rps=0
    for s in "${servers[@]}"; do
        rps=$(median_of "$mode" "$s" 4)
        printf '%-30s %10.0f %9s %8s %8.2f %8.2f %7s %8s  %s\n' "$(label "$s")" "$rps" "$(ratio "$rps" "$nginx_rps")" \
            "$(ratio "$rps" "$node_rps")" "$(median_of "$mode" "$s" 6)" "$(median_of "$mode" "$s" 7)" \
            "$(errors_of "$mode" "$s")" "$(fairness_of "$mode" "$s")" "$(counts_of "$mode" "$s")"
        if [[ $s == beast-* ]] && awk -v a="$rps" -v b="$best_beast_rps" 'BEGIN { exit !(a > b) }'; then
            best_beast=${s#beast-} best_beast_rps=$rps
        fi
        [[ $(base_of "$s") == nginx || $s == node || $s == beast* ]] && continue
        if [[ -n $(pinning_of "$s") ]]; then
            awk -v a="$rps" -v b="$best_pinned_rps" 'BEGIN { exit !(a > b) }' && best_pinned=$(base_of "$s") best_pinned_rps=$rps
        else
            awk -v a="$rps" -v b="$best_rps" 'BEGIN { exit !(a > b) }' && best=$s best_rps=$rps
        fi
        if [[ $s == beast-* ]] && awk -v a="$rps" -v b="$best_beast_rps" 'BEGIN { exit !(a > b) }'; then
            best_beast=${s#beast-} best_beast_rps=$rps
        fi
    done
    [[ -n $best ]] &&
        echo "best schedule: $best ($(ratio "$best_rps" "$nginx_rps")x nginx, $(ratio "$best_rps" "$node_rps")x node)"
    [[ -n $best_pinned ]] &&
        echo "best schedule pinned: $best_pinned ($(ratio "$best_pinned_rps" "$pinned_nginx_rps")x nginx pinned," \
            "$(ratio "$best_pinned_rps" "$node_rps")x node)"
    if [[ -n $best_beast ]]; then
        beast_alone_rps=$(median_of "$mode" beast_alone 4)
        echo "beast_server's best schedule: $best_beast ($(ratio "$best_beast_rps" "$beast_alone_rps")x Beast alone)"
    fi
    if [[ " ${schedule_list[*]} " == *" sticky "* ]]; then
        echo "sticky hashes the client's address, and wrk is one client (127.0.0.1): every connection"
        echo "goes to one worker, so its row is one worker's throughput."
    fi

    how=
    [[ $mode == close ]] && how=", a new connection per request"
    if [[ -n $best ]]; then
        figure "http_vs_nginx$sfx" "$best_rps" "requests/s" \
            "$nginx_version, worker_processes $workers, reuseport deferred$how (http_server's best schedule: $best)" \
            "$nginx_rps" higher "ratio >= 1.1"
        figure "http_vs_node$sfx" "$best_rps" "requests/s" \
            "Node.js $node_version cluster + http, $workers workers, SCHED_RR$how (http_server's best schedule: $best)" \
            "$node_rps" higher "ratio >= 2"
    fi
    if [[ -n $best_pinned ]]; then
        figure "http_vs_nginx_pinned$sfx" "$best_pinned_rps" "requests/s" \
            "$nginx_version, worker_processes $workers, reuseport deferred, worker_cpu_affinity auto$how (http_server --cpu-affinity's best schedule: $best_pinned)" \
            "$pinned_nginx_rps" higher "ratio >= 1.1"
    fi
    if [[ -n $best && -n $best_pinned ]]; then
        figure "cpu_affinity$sfx" "$best_pinned_rps" "requests/s" \
            "http_server unpinned$how (best schedules: $best_pinned pinned, $best unpinned)" "$best_rps" higher \
            "reported beside unpinned"
    fi
    unpinned=$([[ " ${affinity_list[*]} " == *" off "* ]] && echo yes || true)
    if [[ -n $unpinned && " ${schedule_list[*]} " == *" round_robin "* && " ${schedule_list[*]} " == *" reuseport "* ]]; then
        figure "rr_vs_reuseport$sfx" "$(median_of "$mode" round_robin 4)" "requests/s" \
            "http_server's reuseport schedule$how" "$(median_of "$mode" reuseport 4)" higher "ratio >= 0.9"
    fi
    if [[ -n $best_beast ]]; then
        figure "beast_clustered_vs_alone$sfx" "$best_beast_rps" "requests/s" \
            "Boost.Beast alone: $workers threads, an io_context and an SO_REUSEPORT acceptor each$how (beast_server's best schedule: $best_beast)" \
            "$beast_alone_rps" higher "ratio >= 1.0"
    fi
    if [[ -n $unpinned && " ${schedule_list[*]} " == *" round_robin "* ]]; then
        figure "rr_fairness$sfx" "$(fairness_of "$mode" round_robin)" "max/min connections per worker" \
            "perfectly even (1.0)" 1 lower "ratio <= 1.1"
    fi
done
if ((upgrade_duration)); then
    figure nginx_upgrade_failed_requests "$upgrade_failed" requests \
        "none: every request through nginx answered while the primary is replaced" 0 lower "value == 0"
    figure nginx_upgrade_p99_ratio "$p99_during" "ms (p99)" \
        "p99 through nginx without an upgrade, wrk -t$threads -c$connections -d${upgrade_duration}s" \
        "$p99_without" lower "ratio <= 2"
fi
echo
printf '%s\n' "${json_lines[@]}"
