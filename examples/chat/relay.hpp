// chat's relay, on the primary: a message one of its workers' clients said goes to every
// worker here and, tagged with this instance's name, to Redis; what other instances publish
// comes back from Redis to every worker here. Its own, coming back, it skips: sent once.
#pragma once

#include <cluster/cluster.hpp>
#include <cluster/redis.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "messages.hpp"
#include "redis_log.hpp"

namespace chat {

inline constexpr std::string_view channel = "chat";

class relay {
public:
    relay(cluster::primary<protocol>& p, cluster::redis::client& publisher, std::string instance, redis_log& log)
        : primary_(p), publisher_(publisher), instance_(std::move(instance)), log_(log) {}

    // What a client of one of this instance's workers said.
    // Here first: the clients of this instance do not wait on Redis, nor miss it when it is down.
    cluster::task<void> from_worker(std::string text) {
        const std::string payload = instance_ + '\n' + text;
        co_await to_workers(std::move(text));
        auto published = co_await publisher_.command("PUBLISH", channel, payload);
        log_.outcome(published ? std::error_code() : published.error());
    }

    // A payload published on the channel: another instance's message for every client here.
    cluster::task<void> from_redis(std::string_view payload) {
        const auto newline = payload.find('\n');
        if (newline == std::string_view::npos || payload.substr(0, newline) == instance_) co_return;
        co_await to_workers(std::string(payload.substr(newline + 1)));
    }

private:
    // Every worker of this instance's that is not leaving gets it, waiting for room in its
    // channel when it is full. Looked up by id after each wait: one may have exited meanwhile.
    cluster::task<void> to_workers(std::string text) {
        const heard h{std::move(text)};
        std::vector<unsigned> ids;
        for (auto* w : primary_.workers()) ids.push_back(w->id());
        for (unsigned id : ids) {
            auto* w = primary_.worker(id);
            if (!w || !w->is_connected() || w->reason() != cluster::stop_reason::none) continue;
            auto sent = co_await w->send(h);
            (void)sent;  // a worker gone meanwhile: its clients reconnect elsewhere
        }
    }

    cluster::primary<protocol>& primary_;
    cluster::redis::client& publisher_;
    std::string instance_;
    redis_log& log_;
};

}  // namespace chat
