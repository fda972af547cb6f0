#!/usr/bin/env bash
# Builds runtime_bench, ipc_bench, lifecycle_bench, job_pool_bench, metrics_bench, scale_bench, asio_bench,
# handoff_bench and thread_bench optimised with one compiler, runs each
# several times, and prints per figure the run whose ratio is the median (one JSON per line).
#
#   benchmarks/run.sh [--compiler CXX] [--runs N] [--build-dir DIR] [bench ...]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cxx=g++
runs=3
build_dir=
benches=()
while (($#)); do
    case $1 in
    --compiler) cxx=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    -h | --help) sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) benches+=("$1"); shift ;;
    esac
done
((${#benches[@]})) || benches=(runtime_bench ipc_bench lifecycle_bench job_pool_bench metrics_bench scale_bench asio_bench handoff_bench thread_bench)
build_dir=${build_dir:-$root/build/bench-$(basename "$cxx")}

cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" \
    -DCLUSTER_BUILD_BENCHMARKS=ON -DCLUSTER_BUILD_TESTS=OFF -DCLUSTER_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target "${benches[@]}" >/dev/null

lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
for bench in "${benches[@]}"; do
    for ((i = 1; i <= runs; i++)); do
        echo "$bench run $i/$runs ($cxx)" >&2
        "$build_dir/benchmarks/$bench" | grep '^{"name"' >>"$lines"
    done
done

# The median by ratio, so a figure's value and its baseline come from the same run.
python3 - "$lines" "$cxx" <<'EOF'
import json, sys
figures = {}
for line in open(sys.argv[1]):
    f = json.loads(line)
    figures.setdefault(f["name"], []).append(f)
for name, runs in figures.items():
    runs.sort(key=lambda f: f["ratio"])
    chosen = dict(runs[(len(runs) - 1) // 2])
    chosen["compiler"] = sys.argv[2]
    chosen["runs"] = len(runs)
    print(json.dumps(chosen))
EOF
