// cluster::cluster_status: the cluster as its primary sees it at one moment — every worker's
// state and counts, and the cluster's totals — for /metrics, the control socket and the user.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cluster {

enum class worker_state {
    starting,  // forked, not online yet
    online,    // running its code; not ready yet where primary_options::wait_ready asks for it
    ready,     // serving
    leaving,   // told to leave (or leaving on its own): finishing what it has
};

inline const char* to_string(worker_state s) noexcept {
    switch (s) {
    case worker_state::starting: return "starting";
    case worker_state::online: return "online";
    case worker_state::ready: return "ready";
    case worker_state::leaving: return "leaving";
    }
    return "unknown";
}

// Counts that only grow over a worker's life. Summed over every worker that ever ran, dead
// ones included, they are the cluster's totals, which only grow too.
struct worker_counts {
    std::uint64_t messages_sent = 0;  // from the primary to the worker (control messages included)
    std::uint64_t messages_received = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t connections_handed = 0;   // taken by the worker from the primary (round_robin, sticky, ...)
    std::uint64_t connections_refused = 0;  // offered to it and refused (its limit, or it was leaving)
};

struct worker_status {
    unsigned id = 0;
    unsigned slot = 0;
    pid_t pid = 0;
    worker_state state = worker_state::starting;
    std::chrono::steady_clock::duration uptime{};
    std::uint64_t restarts = 0;  // of its slot: the workers that ran in it before this one
    double cpu_seconds = 0;      // user + system, from /proc/<pid>/stat
    std::uint64_t rss_bytes = 0;
    std::uint64_t connections_open = 0;         // handed to it and not closed yet, as far as the primary knows
    std::uint64_t connections_held = 0;         // waiting in the primary for it to answer
    std::chrono::microseconds heartbeat_rtt{};  // the last heartbeat's round trip through both loops; 0 before one
    worker_counts counts;
};

struct cluster_status {
    pid_t primary_pid = 0;
    std::chrono::steady_clock::duration uptime{};
    std::size_t workers_wanted = 0;      // the slots the primary keeps filled
    std::vector<worker_status> workers;  // alive, by id
    std::uint64_t restarts = 0;          // workers started in place of one that exited
    std::uint64_t hangs_killed = 0;      // workers killed for missing their heartbeats
    // Exits by reason: to_string(stop_reason) where the primary ended the worker (hung,
    // reload, scale_down, ...); else "exit" (code 0) or "crash" (another code, or a signal).
    std::map<std::string, std::uint64_t> exits;
    std::uint64_t reloads = 0;                          // rolling reloads finished
    std::chrono::steady_clock::duration last_reload{};  // the last one's duration
    // Signals the primary has taken and acted on, by name ("SIGHUP", "SIGTTIN", ...): a signal
    // that changed nothing (SIGTTOU at one worker) is counted too.
    std::map<std::string, std::uint64_t> signals;
    worker_counts totals;  // every worker's counts, the dead ones' included
    double primary_cpu_seconds = 0;
    std::uint64_t primary_rss_bytes = 0;
};

}  // namespace cluster
