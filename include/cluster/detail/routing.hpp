// cluster::detail::router: what arrives from each worker, and where it goes — answers to
// the primary's requests, the worker's messages as events, its control messages to the jobs
// they concern, and messages for other workers on to them.
#pragma once

#include <cluster/config.hpp>

#include <cstdint>
#include <memory>
#include <utility>
#include <variant>
#include <vector>

#include <cluster/detail/control.hpp>
#include <cluster/detail/link.hpp>
#include <cluster/detail/watchdogs.hpp>
#include <cluster/detail/worker_record.hpp>
#include <cluster/events.hpp>
#include <cluster/io/task.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/metrics/snapshot.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/udp_endpoint.hpp>
#include <cluster/wire/frame.hpp>

namespace cluster::detail {

class supervisor;

class router {
public:
    using record = worker_record;
    using record_ptr = std::shared_ptr<record>;
    using envelope = link::envelope;

    explicit router(supervisor& s) noexcept : s_(s) {}

    // Reads the worker's link until it ends, then tells everyone who cares.
    CLUSTER_DECL io::task<void> pump(record_ptr r);

private:
    CLUSTER_DECL void dispatch(const record_ptr& r, envelope&& e);

    CLUSTER_DECL void on_control(const record_ptr& r, control::link_protocol::variant&& m);

    CLUSTER_DECL void on_heartbeat(record& r, const control::heartbeat& beat);
    CLUSTER_DECL void take_metrics(const record& r, metrics::registry_snapshot snapshot);

    CLUSTER_DECL void came_online(const record_ptr& r);

    // A worker's w.listen(): the balancer opens or shares the socket; a listening event follows.
    CLUSTER_DECL void listen_for(const record_ptr& r, const control::listen_request& ask, std::uint32_t tag);

    // Messages from one worker to another (or to all others), as many as came in a row in one
    // read: each checked as the primary checks what it receives, then on its way marked with
    // the sender's id. Messages for a worker that is gone are dropped. False if one of them broke
    // the protocol: the sender is cut off there, and nothing after it is read.
    CLUSTER_DECL io::task<bool> forward(record& from, std::vector<envelope>& burst);

    // A run of those messages for the same destination, target by target: each target's link
    // is visited once for the run, not once a message (at 256 workers it is cold by the time
    // its turn comes round), and the targets are looked up once.
    CLUSTER_DECL io::task<void> deliver(record& from, std::uint32_t to, std::vector<boxed_message>& run);

    CLUSTER_DECL std::vector<record_ptr> targets(const record& from, std::uint32_t to) const;

    supervisor& s_;
};

}  // namespace cluster::detail
