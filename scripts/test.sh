#!/usr/bin/env bash
# Installs what the tests need, then builds and runs every test three times: g++ without
# optimisation, clang++ optimised (with the fuzzers and the packages' tests), and clang++ with
# ASan + UBSan; then the thread-mode tests under ThreadSanitizer (scripts/tsan.sh). The
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

# Benchmarks are built (not run) once, where they are optimised: building them three
# times only lengthened CI; so are the install and the packages tested once
# (CLUSTER_TEST_PACKAGE). The optimised build has no debug info, which made its compile 40%
# slower; the other two keep line tables (-g1), which is what a backtrace or a sanitizer's
# report needs, in a smaller build than full debug info's. The sanitizers stay with clang++:
# under them g++ compiled the tests three to four times slower.
run_config gcc-debug g++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCLUSTER_BUILD_BENCHMARKS=OFF \
    -DCLUSTER_TEST_PACKAGE=OFF
run_config clang-release clang++ -DCMAKE_BUILD_TYPE=Release
run_config clang-asan clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCLUSTER_SANITIZE=ON -DCLUSTER_FUZZ=OFF \
    -DCLUSTER_BUILD_BENCHMARKS=OFF -DCLUSTER_TEST_PACKAGE=OFF
# The thread-mode tests once more, under ThreadSanitizer (clang++): a few programs, not the tree.
scripts/tsan.sh
echo "all three configurations and the ThreadSanitizer run passed"
