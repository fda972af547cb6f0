// cluster::primary_options and fork_options: how workers start — Node's setupPrimary()
// settings and the start mode — and how the primary supervises them.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <cluster/net/endpoint.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/restart_policy.hpp>

namespace cluster {

enum class start_mode {
    fork,    // the worker is a copy of the primary: fast, shares what was loaded before fork()
    exec,    // the worker re-executes a program: clean state, safe from a multi-threaded primary
    thread,  // the worker is a thread of the primary's process: messages moved, memory shared
};

inline const char* to_string(start_mode m) noexcept {
    switch (m) {
    case start_mode::fork: return "fork";
    case start_mode::exec: return "exec";
    case start_mode::thread: return "thread";
    }
    return "unknown";
}

// What the primary does when a thread worker misses its heartbeats: a thread cannot be
// killed, so the cluster cannot replace it by itself (see docs/threads.md).
enum class hung_thread_action {
    stop,   // stop the cluster gracefully; run() returns exit_code::gave_up, for the primary's
            // own supervisor (systemd, a container runtime) to start the process again
    abort,  // std::abort() at once: the same restart, sooner, with a core dump of the hang
};

// Where one of a worker's output streams (stdout or stderr) goes.
enum class output_mode {
    inherit,  // the primary's own stdout or stderr, shared as is
    relay,    // through the primary, a line at a time, each prefixed "[worker N] "
    pipe,     // to the primary's code, as lines: worker_handle::output()
    discard,  // /dev/null
};

inline const char* to_string(output_mode m) noexcept {
    switch (m) {
    case output_mode::inherit: return "inherit";
    case output_mode::relay: return "relay";
    case output_mode::pipe: return "pipe";
    case output_mode::discard: return "discard";
    }
    return "unknown";
}

// How the primary writes the lines it relays (output_mode::relay).
enum class log_format {
    text,  // as the worker wrote them, each prefixed "[worker N] "
    json,  // one JSON object a line: time, worker, slot, pid, stream, text, end (docs/logs.md)
};

inline const char* to_string(log_format f) noexcept { return f == log_format::json ? "json" : "text"; }

// Where and how the primary writes its output and its workers' relayed lines: see docs/logs.md.
struct log_options {
    // A file the primary's stdout and stderr go to, reopened at SIGUSR1 (logrotate); empty:
    // they stay what the primary was started with.
    std::string file;
    log_format format = log_format::text;
};

// Where a worker's stdout and stderr go (Node's stdio setting): see docs/cluster.md.
struct stdio_options {
    output_mode out = output_mode::inherit;
    output_mode err = output_mode::inherit;
    // pipe: a stream's lines not taken yet, in bytes, past which the primary stops reading
    // the worker's pipe, and the worker's writes wait, until the primary's code takes some.
    std::size_t max_unread = 1u << 20;
};

struct primary_options {
    start_mode mode = start_mode::fork;
    std::string exec;                              // exec mode: the program; empty = this one
    std::optional<std::vector<std::string>> args;  // exec mode: its arguments; unset = the primary's own
    std::map<std::string, std::string> env;        // set over the primary's environment
    std::string cwd;                               // the worker's directory; empty = the primary's
    stdio_options stdio;                           // where the worker's stdout and stderr go
    log_options log;                               // where the primary writes, and relayed lines' format
    bool silent = false;                           // Node's name: stdio {relay, relay}; not with stdio set too
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    int death_signal = SIGKILL;  // what a worker gets if its primary dies

    // Supervision: see docs/supervision.md.
    restart_policy restart;                                     // whether and when a dead worker is replaced
    std::chrono::milliseconds heartbeat_timeout{30'000};        // a worker silent this long is hung; 0: never
    std::chrono::milliseconds kill_timeout{5'000};              // a hung worker gets SIGTERM, then SIGKILL after this
    hung_thread_action hung_thread = hung_thread_action::stop;  // a hung thread worker, which cannot be killed
    std::chrono::milliseconds shutdown_timeout{10'000};         // a graceful stop's deadline, then SIGKILL
    bool wait_ready = false;                                    // a worker is ready at w.ready(), not at online
    // The cluster is ready (systemd's READY=1, a binary upgrade's handover) the first time
    // every slot has a ready worker; or, with this set, when the primary calls p.ready().
    bool ready_manually = false;
    std::chrono::milliseconds ready_timeout{30'000};  // a reload's new worker must be ready by then
    std::uint64_t max_messages = 0;                   // replace a worker after it received this many; 0: never
    std::uint64_t max_messages_jitter = 0;            // plus 0..this, so workers are not replaced together
    std::size_t max_memory = 0;                       // replace a process whose RSS exceeds this many bytes; 0: never
    std::chrono::milliseconds memory_check_interval{1'000};
    // Pins the worker of slot N to one CPU: the ((N - 1) mod count)th of those the primary may
    // run on (nginx's worker_cpu_affinity auto); its replacements get the same one. Off: workers
    // run wherever the primary may. See docs/deployment.md.
    bool cpu_affinity = false;
    // run(): SIGTERM/SIGINT stop, SIGHUP reloads, SIGTTIN/SIGTTOU add/remove a worker, SIGUSR2
    // upgrades the binary, SIGUSR1 reopens log.file.
    bool handle_signals = true;
    // Reap every orphan that comes to the primary, not only its workers: unset, only as PID 1
    // (a container's init); true makes it a child subreaper otherwise. Read when the primary
    // starts: see docs/deployment.md.
    std::optional<bool> reap_orphans;
    // The events queued for primary_main, and each worker's messages waiting for receive(),
    // past which the oldest are dropped (and counted): see docs/reliability.md.
    std::size_t max_queued_bytes = 64u << 20;
    // The control socket's path, for clusterctl (see docs/control.md); empty: none. Read when
    // the primary starts.
    std::string control;

    // Connections: see docs/connections.md.
    net::pick_function pick;  // schedule::custom: which worker gets a connection

    // Where the primary serves GET /metrics, Prometheus's text format, itself: an endpoint
    // ("127.0.0.1:9100", "[::]:9100", "unix:/run/app-metrics.sock"); unset, the default: nowhere.
    // Read when the primary starts: see docs/operations.md.
    std::optional<net::endpoint> metrics;
};

// What one fork() changes from the primary's options; env is merged over theirs.
struct fork_options {
    std::map<std::string, std::string> env;
    std::optional<start_mode> mode;
    std::optional<std::string> exec;
    std::optional<std::vector<std::string>> args;
    std::optional<std::string> cwd;
    std::optional<stdio_options> stdio;
    std::optional<bool> silent;
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
};

// The primary's options with one fork's changes applied. A fork's stdio or silent replaces
// both of the primary's: they are two spellings of one setting.
inline primary_options merged(primary_options base, const fork_options& o) {
    for (const auto& [name, value] : o.env) base.env[name] = value;
    if (o.mode) base.mode = *o.mode;
    if (o.exec) base.exec = *o.exec;
    if (o.args) base.args = *o.args;
    if (o.cwd) base.cwd = *o.cwd;
    if (o.stdio || o.silent) {
        base.stdio = o.stdio.value_or(stdio_options{});
        base.silent = o.silent.value_or(false);
    }
    if (o.uid) base.uid = *o.uid;
    if (o.gid) base.gid = *o.gid;
    return base;
}

}  // namespace cluster
