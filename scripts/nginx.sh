#!/usr/bin/env bash
# nginx.sh: real nginx in front of cluster services, for tests and benchmarks. deploy/nginx/
# cluster.conf is rendered with the backends and port given, and nginx runs on loopback only,
# everything of its own (config, pid file, error and access logs, temp dirs) in DIR.
#   scripts/nginx.sh start DIR --port PORT --backends ADDRESS:PORT[,ADDRESS:PORT...]
#       starts nginx listening on 127.0.0.1:PORT; returns once it listens; prints its pid
#   scripts/nginx.sh stop DIR
#       stops it gracefully (SIGQUIT), or kills it after 10 s; nothing to do if it is not up
# The access log (DIR/access.log) has one line per request: its status, then the backends
# tried and their statuses (nginx's $upstream_addr and $upstream_status: a retry lists more
# than one, separated by ", ").
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
template=$root/deploy/nginx/cluster.conf

die() { echo "nginx.sh: $*" >&2; exit 1; }

find_nginx() {
    command -v nginx || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } ||
        die "nginx not found (scripts/install-deps.sh --test installs nginx-light)"
}

# cluster.conf with each upstream's server lines replaced, in order, by the backends given
# (the lines left over removed), and its listen address by 127.0.0.1:$2.
render() {  # backends port
    awk -v backends="$1" -v port="$2" '
        BEGIN { n = split(backends, b, ",") }
        /^upstream / { inside = 1; used = 0 }
        inside && /^}/ { inside = 0; if (used != n) short = 1 }
        inside && $1 == "server" {
            if (used == n) next
            sub(/server [^ ;]+/, "server " b[++used])
        }
        $1 == "listen" { sub(/listen [^;]+/, "listen 127.0.0.1:" port); listens++ }
        { print }
        END { if (short || listens != 1) exit 1 }' "$template"
}

# nginx's compiled-in temp paths are under /var/lib/nginx: each module built in gets its
# own under DIR (a trimmed build rejects the directives of the modules it lacks).
temp_paths() {  # nginx dir
    local m v
    v=$("$1" -V 2>&1)
    echo "client_body_temp_path $2/client_body;"
    for m in proxy fastcgi uwsgi scgi; do
        [[ $v == *"--without-http_${m}_module"* ]] || echo "${m}_temp_path $2/$m;"
    done
}

write_conf() {  # nginx dir
    local nginx=$1 dir=$2
    cat >"$dir/nginx.conf" <<CONF
# Written by scripts/nginx.sh.
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
# As root the workers stay root: all they touch is in $dir, which no other user may enter.
$( ((EUID == 0)) && echo "user root;")
events { worker_connections 1024; }
http {
    log_format upstreams '\$status \$upstream_addr \$upstream_status';
    access_log $dir/access.log upstreams;
    $(temp_paths "$nginx" "$dir")
    include $dir/cluster.conf;
}
CONF
}

listening() { [[ -n $(ss -Htln "src 127.0.0.1:$1") ]]; }

start() {  # dir, then --port P --backends LIST
    local dir=$1 port= backends= nginx pid
    shift
    while (($#)); do
        case $1 in
            --port) port=$2; shift 2 ;;
            --backends) backends=$2; shift 2 ;;
            *) die "unknown option '$1'" ;;
        esac
    done
    [[ $port =~ ^[1-9][0-9]*$ ]] || die "--port: '$port' is not a port"
    [[ $backends =~ ^[0-9.]+:[0-9]+(,[0-9.]+:[0-9]+)*$ ]] || die "--backends: '$backends' is not ADDRESS:PORT[,...]"
    command -v ss >/dev/null || die "ss (iproute2) not found"
    nginx=$(find_nginx)
    mkdir -p "$dir"
    [[ ! -s $dir/nginx.pid ]] || die "an nginx already runs in $dir (pid $(cat "$dir/nginx.pid"))"
    render "$backends" "$port" >"$dir/cluster.conf" || die "$template: not two upstream servers and one listen to fill in"
    write_conf "$nginx" "$dir"
    # The master binds its sockets before it daemonizes, then writes its pid file.
    "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" </dev/null || {
        cat "$dir/error.log" >&2 2>/dev/null
        die "nginx did not start"
    }
    for _ in {1..100}; do
        [[ -s $dir/nginx.pid ]] && listening "$port" && break
        sleep 0.1
    done
    [[ -s $dir/nginx.pid ]] && listening "$port" || die "nginx did not write its pid file or listen within 10 s"
    pid=$(cat "$dir/nginx.pid")
    echo "$pid"
}

stop() {  # dir
    local dir=$1 pid
    [[ -s $dir/nginx.pid ]] || return 0
    pid=$(cat "$dir/nginx.pid")
    kill -QUIT "$pid" 2>/dev/null || { rm -f "$dir/nginx.pid"; return 0; }
    for _ in {1..100}; do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "nginx.sh: nginx $pid did not stop within 10 s of SIGQUIT; killed" >&2
        # A daemon's master leads its own session: its workers are in its process group.
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$dir/nginx.pid"
}

case ${1:-} in
    start) shift; (($#)) || die "start: no DIR"; start "$@" ;;
    stop) shift; (($# == 1)) || die "stop: DIR, and nothing else"; stop "$1" ;;
    *) die "usage: nginx.sh start DIR --port PORT --backends ADDRESS:PORT[,...] | nginx.sh stop DIR" ;;
esac
