#!/usr/bin/env bash
# beast_server (a Boost.Beast server clustered by cluster::asio) under every schedule, as a
# client and an operator see it: with 2 workers on a port the kernel picks, it answers /, /pid
# (one of its workers) and 404, keeps a connection alive across requests, and echoes WebSocket
# messages (Python's websockets). SIGHUP replaces both workers: a request in progress is
# answered whole, a WebSocket gets 1012, the new workers serve.
# SIGTERM stops it the same way, the WebSocket getting 1001, each worker printing its counts,
# and the primary exits 0. (A request in progress: its head half sent before the signal, the
# rest once its worker has closed an idle connection; it is answered, with Connection: close.) Every step waits for a line or an answer (each wait bounded), never
# for a fixed time. Needs bash, curl and /usr/bin/python3 with websockets.
#   beast_server.sh <path to beast_server>   (BEAST_SCHEDULES="shared custom": those alone)
set -euo pipefail
program=$1
here=$(cd "$(dirname "$0")" && pwd)
source "$here/driver.sh"
ws_client=("/usr/bin/python3" "$here/beast_ws_client.py")

declare -A live=()  # worker pids, from the started and exit lines

note_line() {
    local line=$1
    if [[ $line =~ ^Worker\ ([0-9]+)\ started$ ]]; then
        live[${BASH_REMATCH[1]}]=1
    elif [[ $line =~ ^worker\ [0-9]+\ \(pid\ ([0-9]+)\): ]]; then
        unset "live[${BASH_REMATCH[1]}]"
    fi
}

until_workers() {
    while ((${#live[@]} < $1)); do expect '^Worker [0-9]+ started$'; done
}

get() {  # path -> status, body
    local out
    out=$(curl -s --max-time 10 -w '\n%{http_code}' "http://127.0.0.1:$port$1") || fail "curl $1 failed"
    status=${out##*$'\n'}
    body=${out%$'\n'*}
}

check_routes() {
    get /
    [[ $status == 200 && $body == 'Hello, World!' ]] || fail "/ answered $status '$body'"
    get /pid
    [[ $status == 200 && -n ${live[$body]:-} ]] || fail "/pid answered $status '$body', not a worker's pid (${!live[*]})"
    get /nowhere
    [[ $status == 404 ]] || fail "/nowhere answered $status"
    # Two requests, one connection: curl reuses it when the server keeps it alive.
    local connects
    connects=$(curl -s --max-time 10 -o /dev/null -o /dev/null -w '%{num_connects} ' \
        "http://127.0.0.1:$port/" "http://127.0.0.1:$port/pid") || fail "keep-alive requests failed"
    [[ $connects == "1 0 " ]] || fail "keep-alive: connections made per request: '$connects', not '1 0 '"
}

check_echo() {
    local out
    out=$(timeout 30 "${ws_client[@]}" echo "$port") || fail "WebSocket echo: $out"
    [[ $out == "echo ok" ]] || fail "WebSocket echo said '$out'"
}

# What is in progress when the operator's signal comes: a WebSocket held open (its client's
# lines in $dir/ws); on fd 5 a request whose head is half sent, to worker $in_progress; and on
# fd 6 an idle keep-alive connection to that same worker, which it closes once told to leave.
begin_in_progress() {
    : >"$dir/ws"  # emptied here: the background job's own redirection may come after the check below
    "${ws_client[@]}" hold "$port" >>"$dir/ws" 2>&1 &
    ws_pid=$!
    # Connections are opened, and kept, until two reach one worker: with 2 workers, 3 at most.
    # Waiting for one to reach a given worker would not do: under least_connections the other
    # gets every new one while its count is lower, and under shared the kernel may wake the
    # other's accept for all of them.
    local tries fd pid
    local -A on=()  # worker pid -> a connection to it
    for tries in {1..50}; do
        exec {fd}<>"/dev/tcp/127.0.0.1/$port"
        pid=$(pid_on "$fd")
        [[ -n $pid ]] || fail "no answer to GET /pid"
        if [[ -n ${on[$pid]:-} ]]; then
            in_progress=$pid
            exec 5<&"${on[$pid]}" 6<&"$fd" {fd}<&-
            break
        fi
        on[$pid]=$fd
    done
    for fd in "${on[@]}"; do exec {fd}<&-; done
    [[ -e /dev/fd/6 ]] || fail "50 connections, no two to one worker"
    printf 'GET /pid HTTP/1.1\r\nHost: test\r\n' >&5
    local i line
    for i in {1..200}; do
        grep -q '^holding$' "$dir/ws" && return
        kill -0 "$ws_pid" 2>/dev/null || fail "the WebSocket client ended: $(cat "$dir/ws")"
        if read -r -t 0.1 -u 3 line; then
            echo "$line"
            note_line "$line"
        fi
    done
    fail "the WebSocket client is not holding: $(cat "$dir/ws")"
}

# GET /pid on the kept-alive connection on fd $1: the answering worker's pid.
pid_on() {
    printf 'GET /pid HTTP/1.1\r\nHost: test\r\n\r\n' >&"$1"
    local line length=0 body
    while IFS= read -r -t 10 -u "$1" line; do
        line=${line%$'\r'}
        [[ $line =~ ^Content-Length:\ ([0-9]+)$ ]] && length=${BASH_REMATCH[1]}
        [[ -z $line ]] && break
    done
    read -r -t 10 -N "$length" -u "$1" body || fail "no answer to GET /pid"
    echo "$body"
}

# Once worker $in_progress has been told to leave (it closes the idle connection), the rest of
# the half-sent request: answered whole, by that worker, and the connection closed after it.
# The WebSocket closes with code $1.
end_in_progress() {
    timeout 20 cat <&6 >/dev/null || fail "worker $in_progress kept its idle connection open"
    exec 6<&-
    printf '\r\n' >&5
    local reply
    reply=$(timeout 20 cat <&5) || fail "the request in progress got no answer and close: '$reply'"
    exec 5<&-
    [[ $reply == "HTTP/1.1 200 OK"* ]] || fail "the request in progress was answered '$reply'"
    [[ $reply == *$'\r\nConnection: close\r\n'* ]] || fail "the request in progress kept its connection: '$reply'"
    [[ ${reply##*$'\r\n\r\n'} == "$in_progress" ]] || fail "the request in progress was answered by another: '$reply'"
    wait "$ws_pid" || fail "the WebSocket client failed: $(cat "$dir/ws")"
    [[ $(tail -1 "$dir/ws") == "closed $1" ]] || fail "the WebSocket closed with '$(tail -1 "$dir/ws")', not $1"
}

check_reload() {
    local before=" ${!live[*]} "
    begin_in_progress
    kill -HUP "$primary"
    end_in_progress 1012
    expect '^Reload done: 2 workers replaced$'
    for pid in "${!live[@]}"; do
        [[ $before != *" $pid "* ]] || unset "live[$pid]"  # replaced: it printed its counts, or will
    done
    until_workers 2
    get /pid
    [[ $status == 200 && -n ${live[$body]:-} ]] || fail "after the reload, /pid answered '$body', not a new worker"
}

check_stop() {
    local code=0
    begin_in_progress
    kill -TERM "$primary"
    end_in_progress 1001
    expect '^worker [0-9]+ \(pid [0-9]+\): [0-9]+ connections, [0-9]+ requests, [0-9]+ websockets$'
    expect '^worker [0-9]+ \(pid [0-9]+\): [0-9]+ connections, [0-9]+ requests, [0-9]+ websockets$'
    expect "^Primary $primary stopped: exit code 0$"
    wait "$primary" || code=$?
    primary=
    exec 3<&-
    [[ $code == 0 ]] || fail "beast_server exited with $code, not 0"
}

for schedule in ${BEAST_SCHEDULES:-round_robin shared reuseport sticky least_connections custom}; do
    echo "--- schedule $schedule"
    live=()
    start --workers 2 --port 0 --schedule "$schedule"
    expect "^Primary $primary running$"
    expect '^Listening on http://127\.0\.0\.1:([0-9]+) '
    port=${BASH_REMATCH[1]}
    until_workers 2
    check_routes
    check_echo
    check_reload
    check_stop
done
echo "PASS"
