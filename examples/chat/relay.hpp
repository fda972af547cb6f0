// chat's relay, on the primary: a message one of its workers' clients said goes to every other
// worker here (that worker has delivered it to its own clients, and published it to Redis);
// what other instances publish comes from Redis to every worker here. This instance's own,
// coming back, it skips: sent once.
#pragma once

#include <cluster/cluster.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages.hpp"
#include "published.hpp"

namespace chat {

class relay {
public:
    relay(cluster::primary<protocol>& p, std::string instance) : primary_(p), instance_(std::move(instance)) {}

    // What a client of worker `from` said: it does not wait on Redis, nor miss it when it is down.
    cluster::task<void> from_worker(unsigned from, std::string text) { co_await to_workers(std::move(text), from); }

    // A payload published on the channel: another instance's message for every client here.
    cluster::task<void> from_redis(std::string_view payload) {
        const auto p = parse_published(payload);
        if (!p || p->instance == instance_) co_return;
        co_await to_workers(std::string(p->text));
    }

private:
    // Every worker of this instance's but `except` that is not leaving gets it, waiting for room
    // in its channel when it is full. Looked up by id after each wait: one may have exited meanwhile.
    cluster::task<void> to_workers(std::string text, unsigned except = cluster::from_primary) {
        const heard h{std::move(text)};
        std::vector<unsigned> ids;
        for (auto* w : primary_.workers()) ids.push_back(w->id());
        for (unsigned id : ids) {
            auto* w = primary_.worker(id);
            if (!w || id == except || !w->is_connected() || w->reason() != cluster::stop_reason::none) continue;
            auto sent = co_await w->send(h);
            (void)sent;  // a worker gone meanwhile: its clients reconnect elsewhere
        }
    }

    cluster::primary<protocol>& primary_;
    std::string instance_;
};

}  // namespace chat
