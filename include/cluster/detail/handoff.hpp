// cluster::detail::handoff: the connections the primary has offered to workers and not yet
// heard back about. Its own copy of each stays open until the worker answers, so that a
// refusal, or a worker that dies first, loses nothing: the connection goes elsewhere.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <cluster/net/endpoint.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

// A connection the primary accepted and has not handed over for good.
struct pending_connection {
    std::uint32_t listener = 0;
    unique_fd socket;
    net::endpoint peer;             // sticky and custom only
    std::string peeked;             // its first bytes, where the sticky key peeks (still unread in it)
    std::string key;                // the sticky key found in them; empty when absent
    std::vector<unsigned> refused;  // workers that said no to it
};

class handoff {
public:
    // The number the next offer goes under.
    [[nodiscard]] std::uint64_t next_seq() noexcept { return ++last_seq_; }

    // `c` was offered to `worker_id` as `seq`: kept until the worker answers.
    void offered(std::uint64_t seq, unsigned worker_id, pending_connection c) {
        in_flight_.emplace(seq, offer{worker_id, std::move(c)});
        ++to_worker_[worker_id];
    }

    // The worker answered about `seq`: the connection, if it was offered to that worker
    // (anyone else's answer is not one).
    std::optional<pending_connection> answered(std::uint64_t seq, unsigned worker_id) {
        auto it = in_flight_.find(seq);
        if (it == in_flight_.end() || it->second.worker_id != worker_id) return std::nullopt;
        auto c = std::move(it->second.c);
        in_flight_.erase(it);
        if (--to_worker_[worker_id] == 0) to_worker_.erase(worker_id);
        return c;
    }

    // What was offered to `worker_id` and not answered.
    [[nodiscard]] std::vector<std::uint64_t> unanswered(unsigned worker_id) const {
        std::vector<std::uint64_t> out;
        for (const auto& [seq, o] : in_flight_)
            if (o.worker_id == worker_id) out.push_back(seq);
        return out;
    }

    // The primary's copy of the connection offered as `seq`; -1 if it is no longer offered.
    [[nodiscard]] int socket_of(std::uint64_t seq) const noexcept {
        auto it = in_flight_.find(seq);
        return it == in_flight_.end() ? -1 : it->second.c.socket.get();
    }

    [[nodiscard]] std::size_t size() const noexcept { return in_flight_.size(); }
    // Offered to `worker_id` and not answered yet.
    [[nodiscard]] std::size_t in_flight_to(unsigned worker_id) const noexcept {
        auto it = to_worker_.find(worker_id);
        return it == to_worker_.end() ? 0 : it->second;
    }

    // In a fork-mode worker, still inside fork(): the clients' connections are the primary's.
    void close_in_forked_child() const noexcept {
        for (const auto& [seq, o] : in_flight_) ::close(o.c.socket.get());
    }

private:
    struct offer {
        unsigned worker_id = 0;
        pending_connection c;
    };

    std::unordered_map<std::uint64_t, offer> in_flight_;
    std::unordered_map<unsigned, std::size_t> to_worker_;  // how many of them each worker has
    std::uint64_t last_seq_ = 0;
};

}  // namespace cluster::detail
