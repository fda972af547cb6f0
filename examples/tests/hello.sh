#!/usr/bin/env bash
# hello as an operator drives it: its workers answer HTTP; one killed with SIGKILL is
# replaced by the restart policy; SIGHUP replaces them all and they still answer; SIGTTIN
# adds one and SIGTTOU removes one; SIGTERM stops hello with exit code 0 and no worker left.
# Then --crash: workers that fail as they start make the primary give up, with exit code 3.
# Every step waits for a line hello prints (each wait bounded), never for a fixed time.
#   hello.sh <path to hello>
set -euo pipefail
program=$1
source "$(dirname "$0")/driver.sh"

declare -A live=() seen=()  # worker pids, from hello's online and exit lines

# Keeps track of the workers, from the lines that say one started or ended.
note_line() {
    local line=$1
    if [[ $line =~ ^Worker\ [0-9]+\ \(pid\ ([0-9]+)\)\ online$ ]]; then
        live[${BASH_REMATCH[1]}]=1
        seen[${BASH_REMATCH[1]}]=1
    elif [[ $line =~ ^Worker\ [0-9]+\ \(pid\ ([0-9]+)\)\ exited ]]; then
        unset "live[${BASH_REMATCH[1]}]"
    fi
}

# Waits for hello to end; its exit code must be $1. Echoes the rest of its output: a
# worker that outlived it would hold the pipe open, hence the time limit.
expect_exit() {
    local code=0 line
    wait "$primary" || code=$?
    primary=
    while IFS= read -r -t 5 -u 3 line; do echo "$line"; done
    exec 3<&-
    [[ $code == "$1" ]] || fail "hello exited with $code, not $1"
}

workers() { [[ ${#live[@]} == "$1" ]] || fail "${#live[@]} workers running, not $1"; }

alive() { kill -0 "$1" 2>/dev/null; }

hello_world() {
    local line
    exec 4<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.0\r\n\r\n' >&4
    while IFS= read -r -t 10 -u 4 line; do
        if [[ $line == 'hello world' ]]; then
            exec 4<&-
            return 0
        fi
    done
    fail "no hello world from port $port"
}

start --workers 2 --port 0
expect "^Primary $primary running$"
expect '^Listening on port ([0-9]+)$'
port=${BASH_REMATCH[1]}
while (( ${#live[@]} < 2 )); do expect '^Worker [0-9]+ \(pid [0-9]+\) online$'; done
hello_world

echo "--- SIGKILL a worker: the restart policy replaces it"
# Not `printf | head -n 1`: head may close the pipe before printf has written, and under
# pipefail the SIGPIPE would end this script without a word.
pids=("${!live[@]}")
victim=${pids[0]}
kill -KILL "$victim" || fail "cannot kill worker $victim"
expect "^Worker [0-9]+ \(pid $victim\) exited: signal SIGKILL$"
expect '^Replacing worker [0-9]+ in [0-9]+ ms \(restart 1\)$'
expect '^Worker [0-9]+ \(pid [0-9]+\) online$'
workers 2
hello_world

echo "--- SIGHUP: a rolling reload replaces every worker"
before=("${!live[@]}")
kill -HUP "$primary"
expect '^Reload done: 2 workers replaced$'
workers 2
for pid in "${before[@]}"; do
    [[ -z ${live[$pid]:-} ]] || fail "worker $pid was not replaced"
    if alive "$pid"; then fail "worker $pid still runs after the reload"; fi
done
hello_world

echo "--- SIGTTIN adds a worker, SIGTTOU removes one"
kill -TTIN "$primary"
expect '^Worker [0-9]+ \(pid [0-9]+\) online$'
workers 3
kill -TTOU "$primary"
expect '^Worker [0-9]+ \(pid [0-9]+\) exited: exit code 0 \(scale down\)$'
workers 2
hello_world

echo "--- SIGTERM: a graceful stop"
kill -TERM "$primary"
expect "^Primary $primary stopped: exit code 0$"
expect_exit 0
for pid in "${!seen[@]}"; do
    if alive "$pid"; then fail "worker $pid outlived its primary"; fi
done

echo "--- --crash: the restart policy gives up on a crash loop"
seen=()
live=()
start --workers 2 --port 0 --crash
expect '^Giving up: more than 3 restarts within [0-9]+ ms$'
expect "^Primary $primary stopped: exit code 3$"
expect_exit 3
for pid in "${!seen[@]}"; do
    if alive "$pid"; then fail "worker $pid outlived its primary"; fi
done
echo "PASS"
