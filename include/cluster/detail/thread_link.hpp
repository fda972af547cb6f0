// cluster::detail::thread_link and thread_end: the two pipes between a primary and a thread
// worker, which move link_envelopes as they are, and the view one side has of them.
#pragma once

#include <cstddef>
#include <memory>

#include <cluster/detail/link_envelope.hpp>
#include <cluster/io/doorbell.hpp>
#include <cluster/io/thread_pipe.hpp>

namespace cluster::detail {

using envelope_pipe = io::thread_pipe<link_envelope>;

class thread_peers;

// Made by the primary, shared with the worker's thread.
struct thread_link {
    thread_link(std::size_t high_water, io::wake_method how)
        : to_worker(high_water, &weigh, how), to_primary(high_water, &weigh, how) {}

    envelope_pipe to_worker;
    envelope_pipe to_primary;
};

// One side of a thread_link: what it sends on and what it receives from. A worker's side
// also knows its worker's id and the primary's other thread workers, to send to them straight.
struct thread_end {
    std::shared_ptr<thread_link> shared;
    bool primary_side = true;
    std::shared_ptr<thread_peers> peers;
    unsigned worker_id = 0;

    [[nodiscard]] envelope_pipe& out() const noexcept { return primary_side ? shared->to_worker : shared->to_primary; }
    [[nodiscard]] envelope_pipe& in() const noexcept { return primary_side ? shared->to_primary : shared->to_worker; }
};

// A new thread link's two ends: {the primary's, the worker's}.
inline std::pair<thread_end, thread_end> make_thread_link(std::size_t high_water,
                                                          io::wake_method how = io::probed_wake_method()) {
    auto shared = std::make_shared<thread_link>(high_water, how);
    return {thread_end{shared, true, nullptr, 0}, thread_end{shared, false, nullptr, 0}};
}

}  // namespace cluster::detail
