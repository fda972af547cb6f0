// cluster::detail::status_report: the primary's snapshot of the cluster (cluster_status) —
// each live worker's state and counts, gathered from the jobs that keep them, and the history.
#pragma once

#include <cluster/config.hpp>

#include <cluster/detail/worker_record.hpp>
#include <cluster/status.hpp>

namespace cluster::detail {

class supervisor;

// What the worker's counts are so far: its channel's, and its connections'.
inline worker_counts counts_of(const worker_record& r) noexcept {
    const auto& channel = r.link.stats();
    worker_counts c;
    c.messages_sent = channel.frames_sent;
    c.messages_received = channel.frames_received;
    c.bytes_sent = channel.bytes_sent;
    c.bytes_received = channel.bytes_received;
    c.connections_handed = r.connections_handed;
    c.connections_refused = r.connections_refused;
    return c;
}

// Where the worker stands, as cluster_status says it.
inline worker_state state_of(const worker_record& r) noexcept {
    if (r.retiring || r.disconnect_sent || r.exited_after_disconnect || !r.is_connected()) return worker_state::leaving;
    if (!r.online) return worker_state::starting;
    return r.ready.is_set() ? worker_state::ready : worker_state::online;
}

// Now. Reads each worker's /proc files: a few small reads per worker, answered from memory.
CLUSTER_DECL cluster_status status_report(const supervisor& s);

}  // namespace cluster::detail
