// chat's app: one worker's HTTP side — the page (with a sid cookie), /visits counted in Redis,
// and /ws, whose clients' text messages go to this worker's room, to the primary (for the
// other workers here) and to Redis (for the other instances); the room hears what the primary sends.
#pragma once

#include <cluster/cluster.hpp>
#include <cluster/http.hpp>
#include <cluster/redis.hpp>
#include <cluster/websocket.hpp>

#include <string>
#include <utility>

#include "messages.hpp"
#include "page.hpp"
#include "published.hpp"
#include "redis_log.hpp"
#include "room.hpp"
#include "session_cookie.hpp"
#include "settings.hpp"

namespace chat {

class app {
public:
    app(cluster::worker<protocol>& w, const settings& s, cluster::redis::client& redis, redis_log& log)
        : worker_(w), settings_(s), redis_(redis), log_(log),
          worker_header_("X-Cluster-Worker: " + s.instance + "/" + std::to_string(w.id()) + "\r\n") {}

    cluster::task<void> operator()(const cluster::http::request& req, cluster::http::response& res) {
        if (req.path() == "/ws") {
            (void)cluster::websocket::accept_handshake(req, res, worker_header_);
        } else if (req.path() == "/visits") {
            co_await count_visit(res);
        } else if (req.path() == "/") {
            const std::string cookie = has_cookie(req, "sid") ? std::string() : sessions_.set_cookie_line();
            res.send("200 OK", "text/html; charset=utf-8", page, cookie);
        } else {
            res.send("404 Not Found", "text/plain", "Not Found\n");
        }
    }

    cluster::task<void> on_upgrade(cluster::http::upgraded u) {
        cluster::websocket::socket ws(std::move(u.stream), u.rest, settings_.ws, &sockets_);
        const room::seat seat(room_, ws);
        for (;;) {
            auto m = co_await ws.receive();
            if (m.kind == cluster::websocket::kind::close) co_return;
            if (m.kind != cluster::websocket::kind::text) continue;  // a chat of text: binary is ignored
            const said s{std::string(m.data)};
            auto sent = co_await worker_.send(s);
            (void)sent;  // only fails once the primary is gone, and then this worker leaves
            publishing_.spawn(publish(s.text));
            // This worker's own clients last: they need no hop, and the longer ways start first.
            co_await room_.deliver(s.text);
        }
    }

    // Until the PUBLISHes under way are answered: at the worker's end.
    cluster::task<void> join() { co_await publishing_.join(); }

    [[nodiscard]] room& clients() noexcept { return room_; }
    [[nodiscard]] cluster::websocket::group& sockets() noexcept { return sockets_; }

private:
    // To the other instances, straight from here rather than through the primary: a hop fewer
    // on their clients' way. Spawned, so the client's next message does not wait for Redis;
    // sent in the order spawned, one connection, so Redis delivers them in that order.
    cluster::task<void> publish(std::string text) {
        auto published = co_await redis_.command("PUBLISH", channel, published_payload(settings_.instance, text));
        log_.outcome(published ? std::error_code() : published.error());
    }

    cluster::task<void> count_visit(cluster::http::response& res) {
        auto n = co_await redis_.command("INCR", "chat:visits");
        log_.outcome(n ? std::error_code() : n.error());
        if (n && n->kind == cluster::redis::reply_kind::integer) {
            res.send("200 OK", "text/plain", std::to_string(n->integer));
        } else {
            res.send("503 Service Unavailable", "text/plain", "Redis is unreachable\n");
        }
    }

    cluster::worker<protocol>& worker_;
    const settings& settings_;
    cluster::redis::client& redis_;
    redis_log& log_;
    const std::string worker_header_;
    cluster::websocket::group sockets_;
    room room_;
    session_cookie sessions_;
    cluster::scope publishing_;
};

}  // namespace chat
