// cluster::detail control answers: what the control socket says back — one JSON object on one
// line: an error, a command's outcome, or the cluster's status with each worker's rates.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <cluster/detail/json_writer.hpp>
#include <cluster/detail/status_rates.hpp>
#include <cluster/status.hpp>

namespace cluster::detail {

inline double seconds_of(std::chrono::steady_clock::duration d) noexcept {
    return std::chrono::duration<double>(d).count();
}

// {"ok":false,"error":...}: a request refused, or a command that failed.
inline std::string control_error(std::string_view what) {
    return json_writer().boolean("ok", false).string("error", what).line();
}

// The status answer: the cluster's figures, and each worker's, with its rates over `window`
// seconds since `before` (see rates_of()).
inline std::string status_answer(const cluster_status& s, const cluster_status* before, double window) {
    json_writer w;
    w.boolean("ok", true)
        .count("primary_pid", static_cast<std::uint64_t>(s.primary_pid))
        .number("uptime_seconds", seconds_of(s.uptime))
        .number("window_seconds", before ? window : 0.0)
        .count("workers_wanted", s.workers_wanted)
        .count("restarts", s.restarts)
        .count("hangs_killed", s.hangs_killed)
        .count("reloads", s.reloads)
        .number("primary_cpu_seconds", s.primary_cpu_seconds)
        .count("primary_rss_bytes", s.primary_rss_bytes);
    w.object("exits");
    for (const auto& [reason, n] : s.exits) w.count(reason, n);
    w.close_object().object("signals");
    for (const auto& [name, n] : s.signals) w.count(name, n);
    w.close_object().array("workers");
    for (const auto& worker : s.workers) {
        const auto rates = rates_of(worker, before, window);
        w.object()
            .count("id", worker.id)
            .count("slot", worker.slot)
            .count("pid", static_cast<std::uint64_t>(worker.pid))
            .string("state", to_string(worker.state))
            .number("uptime_seconds", seconds_of(worker.uptime))
            .count("restarts", worker.restarts)
            .number("cpu_seconds", worker.cpu_seconds)
            .number("cpu_percent", rates.cpu_percent)
            .count("rss_bytes", worker.rss_bytes)
            .count("connections", worker.connections_open)
            .count("connections_held", worker.connections_held)
            .number("messages_per_second", rates.messages_per_second)
            .count("messages_sent", worker.counts.messages_sent)
            .count("messages_received", worker.counts.messages_received)
            .number("heartbeat_rtt_ms", static_cast<double>(worker.heartbeat_rtt.count()) / 1000)
            .close_object();
    }
    w.close_array();
    return w.line();
}

}  // namespace cluster::detail
