// cluster::metrics::write_status: the cluster's built-in series — cluster_* families, per
// worker labelled worker="<id>" — written from a cluster_status in the text format.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <cluster/metrics/text_format.hpp>
#include <cluster/status.hpp>

namespace cluster::metrics {

namespace detail {

template <class Rep, class Period>
double seconds(std::chrono::duration<Rep, Period> d) noexcept {
    return std::chrono::duration<double>(d).count();
}

// One family with a sample per worker, labelled by its id.
template <class Value>
void per_worker(text_writer& w, const cluster_status& s, std::string_view name, metric_type type, std::string_view help,
                Value (*value)(const worker_status&)) {
    w.family(name, type, help);
    for (const auto& worker : s.workers) {
        const std::string id = std::to_string(worker.id);
        w.sample(name, {{"worker", id}}, value(worker));
    }
}

inline void write_cluster_series(text_writer& w, const cluster_status& s) {
    w.family("cluster_workers", metric_type::gauge, "Workers alive.");
    w.sample("cluster_workers", {}, static_cast<std::uint64_t>(s.workers.size()));
    w.family("cluster_workers_wanted", metric_type::gauge, "Worker slots the primary keeps filled.");
    w.sample("cluster_workers_wanted", {}, static_cast<std::uint64_t>(s.workers_wanted));
    w.family("cluster_worker_restarts_total", metric_type::counter, "Workers started in place of one that exited.");
    w.sample("cluster_worker_restarts_total", {}, s.restarts);
    w.family("cluster_worker_exits_total", metric_type::counter,
             "Worker exits, by reason: the primary's (hung, reload, scale down, ...), else exit or crash.");
    for (const auto& [reason, n] : s.exits) w.sample("cluster_worker_exits_total", {{"reason", reason}}, n);
    w.family("cluster_worker_hangs_total", metric_type::counter, "Workers killed for missing their heartbeats.");
    w.sample("cluster_worker_hangs_total", {}, s.hangs_killed);
    w.family("cluster_reloads_total", metric_type::counter, "Rolling reloads finished.");
    w.sample("cluster_reloads_total", {}, s.reloads);
    w.family("cluster_reload_duration_seconds", metric_type::gauge, "How long the last rolling reload took.");
    w.sample("cluster_reload_duration_seconds", {}, seconds(s.last_reload));
    w.family("cluster_signals_total", metric_type::counter, "Signals the primary took and acted on, by name.");
    for (const auto& [name, n] : s.signals) w.sample("cluster_signals_total", {{"signal", name}}, n);
    w.family("cluster_uptime_seconds", metric_type::gauge, "Since the primary started.");
    w.sample("cluster_uptime_seconds", {}, seconds(s.uptime));
    w.family("cluster_primary_rss_bytes", metric_type::gauge, "The primary's resident memory.");
    w.sample("cluster_primary_rss_bytes", {}, s.primary_rss_bytes);
    w.family("cluster_primary_cpu_seconds_total", metric_type::counter, "The primary's CPU time, user and system.");
    w.sample("cluster_primary_cpu_seconds_total", {}, s.primary_cpu_seconds);
}

// Every worker's counts, the exited ones' included: these never go down.
inline void write_total_series(text_writer& w, const cluster_status& s) {
    const worker_counts& t = s.totals;
    w.family("cluster_messages_sent_total", metric_type::counter, "Messages from the primary to any worker, ever.");
    w.sample("cluster_messages_sent_total", {}, t.messages_sent);
    w.family("cluster_messages_received_total", metric_type::counter, "Messages from any worker, ever.");
    w.sample("cluster_messages_received_total", {}, t.messages_received);
    w.family("cluster_bytes_sent_total", metric_type::counter, "Bytes from the primary to any worker, ever.");
    w.sample("cluster_bytes_sent_total", {}, t.bytes_sent);
    w.family("cluster_bytes_received_total", metric_type::counter, "Bytes from any worker, ever.");
    w.sample("cluster_bytes_received_total", {}, t.bytes_received);
    w.family("cluster_handoffs_total", metric_type::counter,
             "Connections the primary offered to any worker, ever, by what the worker answered.");
    w.sample("cluster_handoffs_total", {{"result", "taken"}}, t.connections_handed);
    w.sample("cluster_handoffs_total", {{"result", "refused"}}, t.connections_refused);
}

inline void write_worker_series(text_writer& w, const cluster_status& s) {
    using ws = worker_status;
    per_worker(
        w, s, "cluster_worker_heartbeat_rtt_seconds", metric_type::gauge,
        "The last heartbeat's round trip through both loops; 0 before one.",
        +[](const ws& x) { return seconds(x.heartbeat_rtt); });
    per_worker(
        w, s, "cluster_worker_messages_sent_total", metric_type::counter, "Messages from the primary to the worker.",
        +[](const ws& x) { return x.counts.messages_sent; });
    per_worker(
        w, s, "cluster_worker_messages_received_total", metric_type::counter, "Messages from the worker.",
        +[](const ws& x) { return x.counts.messages_received; });
    per_worker(
        w, s, "cluster_worker_bytes_sent_total", metric_type::counter, "Bytes from the primary to the worker.",
        +[](const ws& x) { return x.counts.bytes_sent; });
    per_worker(
        w, s, "cluster_worker_bytes_received_total", metric_type::counter, "Bytes from the worker.",
        +[](const ws& x) { return x.counts.bytes_received; });
    per_worker(
        w, s, "cluster_connections_handed_total", metric_type::counter,
        "Connections the primary handed to the worker, and it took.",
        +[](const ws& x) { return x.counts.connections_handed; });
    per_worker(
        w, s, "cluster_connections_refused_total", metric_type::counter,
        "Connections offered to the worker that it refused.",
        +[](const ws& x) { return x.counts.connections_refused; });
    per_worker(
        w, s, "cluster_worker_connections_open", metric_type::gauge, "Connections the worker took and has not closed.",
        +[](const ws& x) { return x.connections_open; });
    per_worker(
        w, s, "cluster_worker_connections_held", metric_type::gauge,
        "Connections offered to the worker, held by the primary until it answers.",
        +[](const ws& x) { return x.connections_held; });
    per_worker(
        w, s, "cluster_worker_rss_bytes", metric_type::gauge, "The worker's resident memory.",
        +[](const ws& x) { return x.rss_bytes; });
    per_worker(
        w, s, "cluster_worker_cpu_seconds_total", metric_type::counter, "The worker's CPU time, user and system.",
        +[](const ws& x) { return x.cpu_seconds; });
    per_worker(
        w, s, "cluster_worker_uptime_seconds", metric_type::gauge, "Since the worker was started.",
        +[](const ws& x) { return seconds(x.uptime); });
}

}  // namespace detail

// The built-in series, in this order: the cluster's, its totals, each worker's.
inline void write_status(text_writer& w, const cluster_status& s) {
    detail::write_cluster_series(w, s);
    detail::write_total_series(w, s);
    detail::write_worker_series(w, s);
}

}  // namespace cluster::metrics
