#!/usr/bin/env bash
# parallel_hash in both modes: processes and threads each hash every block, say how long it
# took, and agree on the digest (the program exits 2 if they do not).
#   parallel_hash.sh <path to parallel_hash>
set -uo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }

output=$("$1" --mode both --workers 2)
code=$?
echo "$output"
[[ $code == 0 ]] || fail "parallel_hash exited with $code"
fork_line=$(grep -E '^fork: 256 blocks on 2 workers in [0-9]+ ms, digest [0-9a-f]{16}$' <<<"$output") ||
    fail "no time and digest for fork mode"
thread_line=$(grep -E '^thread: 256 blocks on 2 workers in [0-9]+ ms, digest [0-9a-f]{16}$' <<<"$output") ||
    fail "no time and digest for thread mode"
[[ ${fork_line##* } == "${thread_line##* }" ]] || fail "the modes' digests differ"
echo "PASS"
