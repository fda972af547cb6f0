// chat's worker: listens, serves the app, delivers to its room what the primary sends, and
// drains its WebSockets with 1012 or 1001 when the primary disconnects it.
#pragma once

#include <cluster/cluster.hpp>
#include <cluster/http.hpp>
#include <cluster/redis.hpp>

#include <chrono>
#include <cstdio>
#include <string>

#include "app.hpp"
#include "messages.hpp"
#include "redis_log.hpp"
#include "room.hpp"
#include "settings.hpp"

namespace chat {

// Until the primary disconnects this worker.
inline cluster::task<void> hear(cluster::worker<protocol>& w, room& clients) {
    while (auto m = co_await w.receive<heard>()) co_await clients.deliver(m->value.text);
}

inline cluster::task<void> worker_main(cluster::worker<protocol>& w, const settings& s) {
    using namespace std::chrono_literals;
    cluster::redis::client redis(s.redis);
    redis_log log("worker " + std::to_string(w.id()), s.redis_text);
    auto up = co_await redis.connect();  // it keeps trying: /visits answers 503 meanwhile
    log.outcome(up ? std::error_code() : up.error());
    auto connections = co_await w.listen(s.where, s.how, s.listening);
    app chat(w, s, redis, log);
    chat.sockets().close_all_on(w);
    cluster::http::server<app> server(chat, w.stop_token());
    cluster::scope hearing;
    hearing.spawn(hear(w, chat.clients()));
    for (;;) {
        auto stream = co_await connections.accept();
        if (stream) {
            server.serve(std::move(*stream));
            continue;
        }
        if (stream.error() == cluster::errc::listener_closed) break;
        std::fprintf(stderr, "chat: worker %u: accept: %s\n", w.id(), stream.error().message().c_str());
        (void)co_await cluster::io::sleep_for(100ms).with_stop_token(w.stop_token());
    }
    co_await server.join();
    co_await hearing.join();
    co_await chat.join();
    co_await redis.close();
}

}  // namespace chat
