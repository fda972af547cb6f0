#!/usr/bin/env bash
# sharded_store: a shard's worker is SIGKILLed between the writes and the reads; its
# replacement, in the same slot, must serve every key it held.
#   sharded_store.sh <path to sharded_store>
set -uo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }

output=$("$1" --workers 3 --keys 600)
code=$?
echo "$output"
[[ $code == 0 ]] || fail "sharded_store exited with $code"
grep -Eqx '600 keys stored in 3 shards; shard [0-9]+: worker [0-9]+ killed, worker [0-9]+ took over; 600/600 read back' \
    <<<"$output" || fail "not every key came back from the replacement"
echo "PASS"
