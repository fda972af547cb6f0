// chat's primary: forks the workers, relays what they say, and subscribes to the Redis channel
// that carries every other instance's messages.
#pragma once

#include <cluster/cluster.hpp>
#include <cluster/redis.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "messages.hpp"
#include "redis_log.hpp"
#include "relay.hpp"
#include "settings.hpp"

namespace chat {

// Subscribes (again once Redis is back, if it was down), then relays what comes, until closed.
inline cluster::task<void> listen_to_redis(cluster::redis::subscriber& sub, relay& r, const settings& s) {
    for (;;) {
        auto subscribed = co_await sub.subscribe(std::string(channel));
        if (subscribed) break;
        std::fprintf(stderr, "chat: primary: redis at %s: cannot subscribe yet (%s)\n", s.redis_text.c_str(),
                     subscribed.error().message().c_str());
        auto up = co_await sub.wait_connected();
        if (!up) co_return;
    }
    std::printf("Subscribed to redis at %s, channel %s, as %s\n", s.redis_text.c_str(), channel.data(),
                s.instance.c_str());
    for (;;) {
        auto m = co_await sub.next();
        if (!m) co_return;
        co_await r.from_redis(m->payload);
    }
}

// A PING a second: Redis going away and coming back are logged even while nobody chats.
inline cluster::task<void> watch_redis(cluster::redis::client& redis, redis_log& log) {
    using namespace std::chrono_literals;
    for (;;) {
        auto pong = co_await cluster::with_timeout(redis.command("PING"), 1s);
        log.outcome(pong ? std::error_code() : pong.error());
        auto slept = co_await cluster::io::sleep_for(1s);
        if (!slept) co_return;
    }
}

inline cluster::task<void> primary_main(cluster::primary<protocol>& p, const settings& s) {
    std::printf("Primary %d running as %s\n", ::getpid(), s.instance.c_str());
    cluster::redis::client redis(s.redis);
    cluster::redis::subscriber subscriber(s.redis);
    redis_log log("primary", s.redis_text);
    auto up = co_await redis.connect();
    log.outcome(up ? std::error_code() : up.error());
    (void)co_await subscriber.connect();
    relay r(p, s.instance);
    cluster::scope redis_side;
    redis_side.spawn(listen_to_redis(subscriber, r, s));
    redis_side.spawn(watch_redis(redis, log));
    for (unsigned i = 0; i < s.workers; ++i) co_await p.fork();
    bool announced = false;
    for (;;) {
        auto e = co_await p.next_event();
        if (auto* l = e.get_if<cluster::listening_event>(); l && !announced) {
            announced = true;
            std::printf("Listening on http://%s:%u/ (%u worker%s)\n", l->address.c_str(), l->port, s.workers,
                        s.workers == 1 ? "" : "s");
        } else if (auto* m = e.get_if<cluster::incoming<protocol>>()) {
            if (auto* text = m->get_if<said>()) co_await r.from_worker(m->from, std::move(text->text));
        }
    }
}

}  // namespace chat
