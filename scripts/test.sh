#!/usr/bin/env bash
# Installs what the tests need, then builds and runs every test twice: g++ without
# optimisation, with ASan + UBSan, and clang++ optimised (with the fuzzers). The
# tests and examples build on the compiled core (cluster::core); the benchmarks, fuzzers and
# the package and consumer tests' programs header-only, as docs/architecture.md says.
# Everything builds with -Wall -Wextra -Wpedantic -Werror, from sources formatted as
# .clang-format says.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/format.sh --check

jobs=$(nproc)
# gold links the 120-odd programs of a configuration in half the time of the default linker (it
# comes with binutils, as that one does); a user's build keeps the default.
linker=(-DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=gold -DCMAKE_SHARED_LINKER_FLAGS=-fuse-ld=gold)
run_config() {
    local name=$1 cxx=$2; shift 2
    echo "=== $name ==="
    cmake -S . -B "build/$name" -DCMAKE_CXX_COMPILER="$cxx" -DCLUSTER_WERROR=ON -DCLUSTER_BUILD_TESTS=ON "${linker[@]}" "$@" >/dev/null
    local start=$SECONDS
    cmake --build "build/$name" -j "$jobs"
    local built=$SECONDS
    (cd "build/$name" && ctest --output-on-failure -j "$jobs" --timeout 300)
    echo "=== $name: built in $((built - start)) s, tested in $((SECONDS - built)) s ==="
}

# Two configurations, one per compiler: g++ (what users build with) without optimisation and
# with ASan + UBSan, and clang++ optimised, with the fuzzers, the benchmarks (built, not run)
# and the install's and packages' tests (CLUSTER_TEST_PACKAGE), which depend on no compiler
# flag. The sanitizers ran in a third configuration of their own (clang++), a third of a run
# that must stay under 25 minutes: g++'s build takes them instead. The debug build keeps line
# tables (-g1): what a backtrace or a sanitizer's report needs.
# The optimised build has no debug info, which made its compile 40% slower.
run_config gcc-asan g++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCLUSTER_SANITIZE=ON \
    -DCLUSTER_BUILD_BENCHMARKS=OFF -DCLUSTER_TEST_PACKAGE=OFF
run_config clang-release clang++ -DCMAKE_BUILD_TYPE=Release
echo "both configurations passed"
