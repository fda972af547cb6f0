#!/usr/bin/env bash
# Installs what the tests need (what building them needs first, the rest while g++ builds),
# and builds and runs every test twice: with g++ optimised, as
# a user builds (with the benchmarks, the inlining checks and the packages' tests), and with
# clang++ under ASan + UBSan (with the fuzzers); then the thread-mode tests under
# ThreadSanitizer (scripts/tsan.sh). The tests, examples and benchmarks build on the compiled
# core (cluster::core); the fuzzers and the package and consumer tests' programs header-only, as
# docs/architecture.md says. Everything builds with -Wall -Wextra -Wpedantic -Werror, from
# sources formatted as .clang-format says.
set -euo pipefail
cd "$(dirname "$0")/.."
# What the g++ build needs first; the rest of what the tests need (clang, the servers, a
# browser, clang-format) installs while it builds: apt on a fresh machine waits on the disk
# and the network more than it computes. The tests wait for it, and the format check with them.
scripts/install-deps.sh --test-build
mkdir -p build
scripts/install-deps.sh --test >build/install-deps.log 2>&1 &
installing=$!
tests_need_installed() {
    [[ -n $installing ]] || return 0
    local start=$SECONDS
    wait "$installing" || { cat build/install-deps.log; echo "scripts/install-deps.sh --test failed" >&2; exit 1; }
    installing=
    echo "=== the tests' packages: waited $((SECONDS - start)) s for them ==="
    scripts/format.sh --check
}

jobs=$(nproc)
# Ninja schedules the 250-odd targets of a configuration without make's per-directory passes,
# and gold links them in half the time of the default linker (it comes with binutils, as that
# one does); a user's build keeps the defaults. Not the sanitizers' programs: they are linked
# position-dependent (cmake/warnings.cmake), where gold warns of every symbol in ASan's list
# of those to export: LLVM's lld links them, in a quarter of the time (cluster_tests: 1.4 s
# against 5.7 s).
generator=(-G Ninja)
gold=(-DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=gold -DCMAKE_SHARED_LINKER_FLAGS=-fuse-ld=gold)
lld=(-DCMAKE_EXE_LINKER_FLAGS=-fuse-ld=lld -DCMAKE_SHARED_LINKER_FLAGS=-fuse-ld=lld)
run_config() {
    local name=$1 cxx=$2 tests=$3; shift 3
    echo "=== $name ==="
    cmake -S . -B "build/$name" -DCMAKE_CXX_COMPILER="$cxx" -DCLUSTER_WERROR=ON -DCLUSTER_BUILD_TESTS=ON "${generator[@]}" "$@" >/dev/null
    local start=$SECONDS
    cmake --build "build/$name" -j "$jobs"
    local built=$SECONDS
    tests_need_installed
    local testing=$SECONDS
    (cd "build/$name" && ctest --output-on-failure -j "$tests" --timeout 300)
    echo "=== $name: built in $((built - start)) s, tested in $((SECONDS - testing)) s ==="
}

# Two configurations cover what three did in two thirds of the time (CI's budget is 25
# minutes, installs included). g++ Release is what users build and run; the sanitizers stay
# with clang++, under which g++ compiled the tests three to four times slower, in a build
# without optimisation that keeps its asserts and line tables (-g1: what a sanitizer's report
# needs, in a smaller build than full debug info's). The benchmarks are built (not run) once,
# optimised, and so are the install and the packages tested (CLUSTER_TEST_PACKAGE) and the
# docs' programs run (CLUSTER_TEST_DOCS: short programs of the library's everyday calls, which
# the tests exercise under the sanitizers too); the fuzzers are clang's, with the sanitizers they
# run under anyway.
# Optimised, the tests wait on events more than they compute: two to a core keep it busy (at
# one a quarter of it sat idle) and end in 40% less time. Under the sanitizers they compute
# more: three to two cores (at one to a core a sixth of the machine sat idle: 282 and 300 s,
# against 237, 278 and 261 s at three), and the cases timed against a bound, which two to a
# core pushed past it (cluster/overload: back within 2 s, in 2.5), take two of those slots
# (tests/CMakeLists.txt).
# g++ collects its garbage from 128 MB of heap on, and a file that includes the library takes it
# past 500 MB: from 384 MB on, it collects once or not at all, for 6-33% more memory (the
# largest test batch 2.9 GB against 2.7). The build's 48 compiles that both builds had took 790
# CPU-s against 960 (hello.cpp 6.9 s against 8.3, median of six). CXXFLAGS, so that the package
# tests' consumers and the refused cases take it as well; the output is the same.
CXXFLAGS=--param=ggc-min-heapsize=393216 \
    run_config gcc-release g++ "$((2 * jobs))" "${gold[@]}" -DCMAKE_BUILD_TYPE=Release -DCLUSTER_FUZZ=OFF -DCLUSTER_BENCHMARKS_HEADER_ONLY=OFF
run_config clang-sanitize clang++ "$((3 * jobs / 2))" "${lld[@]}" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DCLUSTER_SANITIZE=ON \
    -DCLUSTER_BUILD_BENCHMARKS=OFF -DCLUSTER_TEST_PACKAGE=OFF -DCLUSTER_TEST_DOCS=OFF
# The thread-mode tests once more, under ThreadSanitizer (clang++): a few programs, not the tree.
scripts/tsan.sh
echo "both configurations and the ThreadSanitizer run passed"
