#!/usr/bin/env bash
# What a user waits for: the compile of examples/hello.cpp and examples/http_server.cpp
# (-O2, one translation unit each) in wall seconds, and hello's peak memory, as a program
# that links cluster::core compiles them (CLUSTER_SEPARATE_COMPILATION) and, for reference,
# header-only; beside the compile of a minimal Boost.Beast server
# (benchmarks/compile/beast_server.cpp) in the same run, and the core's own, paid once.
# Each file is compiled --runs times; the median time and the largest peak are reported,
# one JSON object per figure per line.
#
#   benchmarks/compile_bench.sh [--compiler CXX] [--runs N]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cxx=g++
runs=3
while (($#)); do
    case $1 in
    --compiler) cxx=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "compile_bench.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# "<seconds> <peak KB>" of one compile, from GNU time; the flags after the file are added.
compile_once() {
    local file=$1
    shift
    /usr/bin/time -f '%e %M' -o "$work/time" "$cxx" -std=c++20 -O2 -I "$root/include" \
        -isystem /usr/share/include/llhttp "$@" -c "$file" -o "$work/out.o"
    cat "$work/time"
}

# "<median seconds> <largest peak MB>" over the runs.
measure() {
    local file=$1 i
    shift
    for ((i = 1; i <= runs; i++)); do
        echo "compiling $(basename "$file") $* with $cxx, run $i/$runs" >&2
        compile_once "$file" "$@"
    done | sort -n | awk '{ t[NR] = $1; if ($2 > m) m = $2 }
        END { mid = int((NR + 1) / 2); s = (NR % 2) ? t[mid] : (t[mid] + t[mid + 1]) / 2; printf "%.2f %.0f\n", s, m / 1024 }'
}

echo '#include <cluster/src.hpp>' >"$work/core.cpp"
read -r beast_s beast_mb < <(measure "$root/benchmarks/compile/beast_server.cpp")
# report <name> <file> <target seconds> <target MB, or ""> [flags]
report() {
    local name=$1 file=$2 max_s=$3 max_mb=$4 s mb
    shift 4
    read -r s mb < <(measure "$file" "$@")
    local compiler
    compiler=$(basename "$cxx")
    python3 - "$name" "$s" "$mb" "$beast_s" "$beast_mb" "$max_s" "$max_mb" "$compiler" <<'PY'
import json, sys
name, s, mb, bs, bmb, max_s, max_mb, cxx = sys.argv[1:]
figures = [("", s, "s", bs, max_s)] + ([("_memory", mb, "MB", bmb, max_mb)] if max_mb else [])
for suffix, value, unit, base, limit in figures:
    value, base = float(value), float(base)
    print(json.dumps({"name": name + suffix, "value": value, "unit": unit,
                      "baseline": "beast_server.cpp compile (" + cxx + " -O2)", "baseline_value": base,
                      "ratio": round(value / base, 3), "better": "lower",
                      "target": "value <= " + limit if limit != "-" else "none (for reference)"}))
PY
}
core=-DCLUSTER_SEPARATE_COMPILATION
report compile_hello "$root/examples/hello.cpp" 8 400 $core
report compile_http_server "$root/examples/http_server.cpp" 12 "" $core
report compile_hello_header_only "$root/examples/hello.cpp" - -
report compile_http_server_header_only "$root/examples/http_server.cpp" - ""
report compile_core "$work/core.cpp" - "" $core
