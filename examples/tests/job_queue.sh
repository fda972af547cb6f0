#!/usr/bin/env bash
# job_queue under chaos: workers are SIGKILLed every few milliseconds, yet each of 2000
# jobs must be done exactly once, and job_queue must say so and exit 0.
#   job_queue.sh <path to job_queue>
set -uo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }

output=$("$1" --workers 4 --jobs 2000 --chaos)
code=$?
echo "$output"
[[ $code == 0 ]] || fail "job_queue exited with $code"
grep -qx '2000 jobs done, 0 lost, 0 duplicated' <<<"$output" || fail "not every job was done exactly once"
# Without a death, the run proved nothing.
[[ $output =~ ([0-9]+)\ workers\ died ]] && ((BASH_REMATCH[1] > 0)) || fail "chaos killed no worker"
echo "PASS"
