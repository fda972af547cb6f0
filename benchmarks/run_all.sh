#!/usr/bin/env bash
# run_all: every benchmark built by both compilers (g++ and clang++, CMake's Release), run in
# one go: the programs round by round, each round running each program once per compiler, so
# both builds see the same machine; then http_bench.sh and ws_bench.sh once per compiler. Prints
# each figure's JSON line tagged with its compiler (of a program's runs, the one whose ratio is
# the median), then a table of both compilers' figures: a target is met only if both meet it.
#
#   benchmarks/run_all.sh [--runs N] [--compilers "g++ clang++"] [--build-root DIR]
#                         [--timeout S] [--no-servers] [--own-session] [bench ...]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
here=$root/benchmarks

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "$0"
    cat <<EOF

  --runs N           runs of each program per compiler; the median is reported (default 5)
  --compilers LIST   the compilers, space-separated (default "g++ clang++")
  --build-root DIR   each compiler's tree is DIR/bench-<compiler>, reused if there
                     (default $root/build)
  --timeout S        seconds a program's run, or a script's, may take (default 900)
  --no-servers       leave out http_bench.sh and ws_bench.sh (nginx, Node.js, wrk, Redis)
  --own-session      run everything in a session of its own whose autogroup has nice -20,
                     as a dedicated machine would (needs root); default: as a user runs it
  bench ...          only these: runtime_bench ipc_bench lifecycle_bench job_pool_bench
                     metrics_bench scale_bench asio_bench handoff_bench thread_bench redis_bench http_bench
                     ws_bench (default: all)

Bounded: about 40 minutes with the defaults on a 2-vCPU machine once built, 28 without the
servers; --runs 3 takes about 28 and 16.
EOF
}

runs=5
compilers="g++ clang++"
build_root=$root/build
limit=900
servers=1
own_session=0
wanted=()
while (($#)); do
    case $1 in
        --runs) runs=$2; shift 2 ;;
        --compilers) compilers=$2; shift 2 ;;
        --build-root) build_root=$2; shift 2 ;;
        --timeout) limit=$2; shift 2 ;;
        --no-servers) servers=0; shift ;;
        --own-session) own_session=1; shift ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "run_all.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) wanted+=("$1"); shift ;;
    esac
done
read -r -a cxx_list <<<"$compilers"

all_programs=(runtime_bench ipc_bench lifecycle_bench job_pool_bench metrics_bench scale_bench asio_bench handoff_bench
    thread_bench redis_bench)
all_scripts=(http_bench ws_bench)
((servers)) || all_scripts=()
is_wanted() { ((${#wanted[@]} == 0)) || [[ " ${wanted[*]} " == *" $1 "* ]]; }
programs=() scripts=()
for p in "${all_programs[@]}"; do is_wanted "$p" && programs+=("$p"); done
for s in "${all_scripts[@]}"; do is_wanted "$s" && scripts+=("$s"); done

if ((own_session)) && [[ ${RUN_ALL_OWN_SESSION:-} != 1 ]]; then
    # The autogroup is the session's: a new session, then its nice, then this script again.
    exec setsid bash -c 'echo -20 >/proc/self/autogroup && RUN_ALL_OWN_SESSION=1 exec "$@"' _ "$0" \
        --runs "$runs" --compilers "$compilers" --build-root "$build_root" --timeout "$limit" \
        $( ((servers)) || echo --no-servers) "${wanted[@]}"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lines=$work/lines  # compiler <tab> JSON, every run
: >"$lines"

# --- the builds: each compiler's Release tree, with the examples the scripts serve -------
tree_of() { echo "$build_root/bench-$(basename "$1")"; }
for cxx in "${cxx_list[@]}"; do
    tree=$(tree_of "$cxx")
    echo "building with $cxx in $tree" >&2
    cmake -S "$root" -B "$tree" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DCLUSTER_BUILD_BENCHMARKS=ON \
        -DCLUSTER_BUILD_TESTS=OFF -DCLUSTER_BUILD_EXAMPLES=ON >"$work/configure.log" 2>&1 ||
        { cat "$work/configure.log" >&2; exit 1; }
    targets=()
    known=$(cmake --build "$tree" --target help)
    for p in "${programs[@]}"; do grep -qw "$p" <<<"$known" && targets+=("$p"); done
    if [[ " ${scripts[*]} " == *" http_bench "* ]]; then
        targets+=(http_server)
        # http_bench.sh takes Beast's two servers from beside http_server, where Boost.Beast is.
        grep -qw beast_alone <<<"$known" && targets+=(beast_server beast_alone)
    fi
    [[ " ${scripts[*]} " == *" ws_bench "* ]] && targets+=(chat ws_bench)
    ((${#targets[@]})) || continue
    cmake --build "$tree" -j "$(nproc)" --target "${targets[@]}" >"$work/build.log" 2>&1 ||
        { tail -40 "$work/build.log" >&2; exit 1; }
done

# Runs one measurement ($1: compiler, $2: what, then the command), bounded; keeps its figures.
measure() {
    local cxx=$1 what=$2 out=$work/out
    shift 2
    echo "$(date +%T) $what ($cxx), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    if ! timeout --kill-after=10 "$limit" "$@" >"$out" 2>"$work/err"; then
        echo "  $what ($cxx) failed or ran out of time; its stderr ends:" >&2
        tail -5 "$work/err" >&2
    fi
    grep '^{"name"' "$out" | sed "s/^/$cxx\t/" >>"$lines" || true
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg) at the start" >&2
for ((round = 1; round <= runs; round++)); do
    for p in "${programs[@]}"; do
        for cxx in "${cxx_list[@]}"; do
            binary=$(tree_of "$cxx")/benchmarks/$p
            [[ -x $binary ]] || continue
            measure "$cxx" "$p run $round/$runs" "$binary"
        done
    done
done
for s in "${scripts[@]}"; do
    for cxx in "${cxx_list[@]}"; do
        tree=$(tree_of "$cxx")
        case $s in
            http_bench)
                beast=()
                [[ -x $tree/benchmarks/beast_alone ]] || beast=(--beast-schedules none)
                measure "$cxx" "$s" "$here/http_bench.sh" --server "$tree/examples/http_server" "${beast[@]}"
                ;;
            ws_bench)
                chat=$tree/examples/chat/chat
                [[ -x $chat ]] || chat=$tree/examples/chat
                measure "$cxx" "$s" "$here/ws_bench.sh" --chat "$chat" --bench "$tree/benchmarks/ws_bench"
                ;;
        esac
    done
done
echo "load $(cut -d' ' -f1-3 /proc/loadavg) at the end" >&2

python3 - "$lines" "${cxx_list[@]}" <<'EOF'
import json, re, sys

path, compilers = sys.argv[1], sys.argv[2:]
runs = {}  # (name, compiler) -> figures of every run
order = []
for line in open(path):
    cxx, text = line.rstrip("\n").split("\t", 1)
    f = json.loads(text)
    if f["name"] not in order:
        order.append(f["name"])
    runs.setdefault((f["name"], cxx), []).append(f)

# Of a figure's runs, the one whose ratio is the median: its value and baseline belong together.
chosen = {}
for (name, cxx), fs in runs.items():
    fs = sorted(fs, key=lambda f: f["ratio"] if f["ratio"] is not None else float("inf"))
    f = dict(fs[(len(fs) - 1) // 2])
    f["compiler"], f["runs"] = cxx, len(fs)
    f["ratios"] = [f2["ratio"] for f2 in fs]
    chosen[name, cxx] = f
    print(json.dumps(f))

def meets(f):
    """True or False against the figure's target, None when it has none to meet."""
    t, r, v, b = f["target"], f["ratio"], f["value"], f["baseline_value"]
    m = re.fullmatch(r"(ratio|value) (<=|>=|==) ([0-9.]+)", t)
    if m:
        x = r if m.group(1) == "ratio" else v
        if x is None:
            return False
        limit = float(m.group(3))
        return {"<=": x <= limit, ">=": x >= limit, "==": x == limit}[m.group(2)]
    m = re.fullmatch(r"<= ([0-9.]+) ms(?: p50)? and >= ([0-9.]+)x faster than Node", t)
    if m:
        return v is not None and v <= float(m.group(1)) and b > 0 and b / v >= float(m.group(2))
    return None

def cell(f):
    if f is None:
        return "-"
    v = "-" if f["value"] is None else f"{f['value']:.4g}"
    r = "-" if f["ratio"] is None else f"{f['ratio']:.3g}"
    spread = [x for x in f["ratios"] if x is not None]
    rng = f" [{min(spread):.3g}-{max(spread):.3g}]" if len(spread) > 1 else ""
    return f"{v} {f['unit']} ({r}{rng})"

rows = [["figure"] + compilers + ["target"]]
for name in order:
    fs = [chosen.get((name, c)) for c in compilers]
    target = next(f["target"] for f in fs if f)
    verdicts = [meets(f) if f else False for f in fs]
    if all(v is None for v in verdicts):
        verdict = "reported"
    elif all(verdicts):
        verdict = "met"
    else:
        short = [c for c, v in zip(compilers, verdicts) if not v]
        verdict = "NOT met with " + ", ".join(short)
    rows.append([name] + [cell(f) for f in fs] + [f"{target}: {verdict}"])
widths = [max(len(r[i]) for r in rows) + 2 for i in range(len(rows[0]) - 1)]
print()
for r in rows:
    print("".join(x.ljust(w) for x, w in zip(r, widths)) + r[-1])
print("\nvalue unit (ratio [ratios of every run]); each cell is the run whose ratio is the median")
EOF
