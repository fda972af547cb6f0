#!/usr/bin/env bash
# Builds the thread-mode tests with clang++ and ThreadSanitizer and runs them: the pipes between
# threads' loops (io/thread_pipe), the wakes a spinning loop takes (io/spinning_wakes), the pool
# of messages' boxes (detail/box_pool), thread workers (cluster/threads), messages moved between
# threads (cluster/moved_messages), and the messaging, restart and scaling suites, whose cases
# run with thread workers too. A report fails the run.
# scripts/test.sh calls it after its two configurations; it builds these files only, as one
# program (CLUSTER_TESTS_SELECTED).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${TSAN_BUILD_DIR:-build/clang-tsan}
tests=(io_thread_pipe io_spinning_wakes detail_box_pool cluster_threads cluster_messaging cluster_moved_messages cluster_restart cluster_scale_recycle)
cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
    -DCMAKE_CXX_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DCLUSTER_WERROR=ON \
    -DCLUSTER_BUILD_TESTS=ON -DCLUSTER_BUILD_BENCHMARKS=OFF -DCLUSTER_BUILD_EXAMPLES=OFF -DCLUSTER_FUZZ=OFF \
    -DCLUSTER_TEST_PACKAGE=OFF -DCLUSTER_TESTS_SELECTED="$(IFS=';'; echo "${tests[*]}")" >/dev/null
start=$SECONDS
cmake --build "$dir" --target selected_tests -j "$(nproc)"
built=$SECONDS
# halt_on_error: the first report ends the test with exitcode, so ctest sees it fail.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
# Through ctest, as CI runs tests: each case in a process of its own. The wake method matters to
# the pipes and to what crosses them; restarts and scaling run once, with the default wake.
all='^(io/(thread_pipe|spinning_wakes)|detail/box_pool|cluster/(threads|moved_messages|messaging|restart|scale_recycle)):'
crossing='^(io/thread_pipe|cluster/(threads|moved_messages|messaging)):'
echo "=== tsan: ${tests[*]} ==="
(cd "$dir" && ctest -R "$all" --output-on-failure -j "$(nproc)" --timeout 300)
echo "=== tsan: the pipes and messages again with the eventfd wake ==="
(cd "$dir" && CLUSTER_WAKE=eventfd ctest -R "$crossing" --output-on-failure -j "$(nproc)" --timeout 300)
echo "=== tsan: built in $((built - start)) s, tested in $((SECONDS - built)) s, no report ==="
