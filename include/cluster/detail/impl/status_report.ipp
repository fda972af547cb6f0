// cluster::detail::status_report's definition, which needs the whole supervisor. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <unistd.h>

#include <algorithm>

#include <cluster/detail/process_usage.hpp>
#include <cluster/detail/status_report.hpp>

namespace cluster::detail {

namespace status_report_parts {

inline worker_status status_of(const supervisor& s, const worker_record& r, worker_record::clock::time_point now) {
    worker_status w;
    w.id = r.id;
    w.slot = r.home_slot;
    w.pid = r.pid;
    w.state = state_of(r);
    w.uptime = now - r.started;
    w.restarts = s.history.restarts_of(r.home_slot);
    if (auto used = usage_of(r.pid)) {
        w.cpu_seconds = used->cpu_seconds;
        w.rss_bytes = used->rss_bytes;
    }
    // The balancer counts a connection open from its offer on; held ones are not taken yet.
    const std::uint64_t offered = s.balancer.open_in(r.id);
    w.connections_held = s.balancer.held_for(r.id);
    w.connections_open = offered - std::min(offered, w.connections_held);
    w.heartbeat_rtt = r.heartbeat_rtt;
    w.counts = counts_of(r);
    return w;
}

}  // namespace status_report_parts

CLUSTER_DECL cluster_status status_report(const supervisor& s) {
    const auto now = worker_record::clock::now();
    cluster_status out;
    out.primary_pid = ::getpid();
    out.workers_wanted = s.slots.size();
    s.history.fill(out, now);
    // Workers whose exit is not in the history yet count towards the totals all the same:
    // they never go down.
    for (const auto& [id, r] : s.workers) {
        if (!r->in_history) add(out.totals, counts_of(*r));
        if (!r->is_dead()) out.workers.push_back(status_report_parts::status_of(s, *r, now));
    }
    if (auto used = usage_of(::getpid())) {
        out.primary_cpu_seconds = used->cpu_seconds;
        out.primary_rss_bytes = used->rss_bytes;
    }
    return out;
}

}  // namespace cluster::detail
