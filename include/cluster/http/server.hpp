// cluster::http::server: the HTTP/1.1 connections of one worker served — keep-alive,
// pipelining, limits, timeouts, upgrades and a graceful drain — and joined at the end.
#pragma once

#include <cluster/http/connection.hpp>
#include <cluster/http/handler.hpp>
#include <cluster/http/limits.hpp>
#include <cluster/http/lingering_close.hpp>
#include <cluster/http/upgraded.hpp>
#include <cluster/http/watchdog.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/tcp_stream.hpp>

#include <array>
#include <cstddef>
#include <span>
#include <stop_token>
#include <string_view>
#include <utility>

namespace cluster::http {

// Far more than a request's head usually takes; a longer one takes several reads.
inline constexpr std::size_t read_buffer_size = 8 * 1024;

// serve() each accepted stream, then join(): it returns once every connection has ended.
// When `drain` is requested, each connection answers the request in progress with
// Connection: close, and connections at rest between requests close (see watchdog);
// upgraded ones are their on_upgrade's to end. The handler must outlive the server.
template <handler Handler>
class server {
public:
    server(Handler& h, std::stop_token drain, limits l = {})
        : handler_(h), limits_(l), drain_(drain), dog_(limits_, std::move(drain)) {
        clock_.spawn(watchdog::run(dog_));
    }

    void serve(net::tcp_stream stream) { connections_.spawn(serve_connection(std::move(stream), *this)); }

    // Connections open now, upgraded ones included.
    [[nodiscard]] std::size_t connections() const noexcept { return connections_.size(); }

    io::task<void> join() {
        co_await connections_.join();
        clock_.request_stop();
        co_await clock_.join();
    }

private:
    // The answers to all the requests in one read leave in one write.
    static io::task<void> serve_connection(net::tcp_stream stream, server& self) {
        connection c(self.limits_, self.drain_);
        watchdog::watch watch(self.dog_);
        std::array<char, read_buffer_size> in;
        std::span<const char> rest;  // read, and not parsed yet
        bool filled = false;         // the last read filled `in`: more may be waiting
        bool switched = false;
        bool nodelay = false;
        while (!c.closing()) {
            auto n = co_await stream.read_some(in).with_stop_token(watch.begin(c.next(), c.requests_begun()));
            if (watch.request_timed_out()) {
                c.time_out();  // even if bytes came meanwhile: the deadline had passed
            } else if (n && *n > 0) {
                filled = *n == in.size();
                rest = std::span<const char>(in.data(), *n);
                while (!c.closing() && c.parse(rest)) {
                    response r = c.respond();
                    if constexpr (std::same_as<std::invoke_result_t<Handler&, const request&, response&>, void>) {
                        self.handler_(c.current(), r);
                    } else {
                        (void)watch.begin(waiting::handler, c.requests_begun());
                        co_await self.handler_(c.current(), r);
                    }
                    c.answered(r, rest);
                    switched = r.switched();
                }
            } else {
                co_return;  // the client left, or the watchdog gave up on a read
            }
            // Nagle's algorithm holds a small segment back only while earlier data is unacknowledged,
            // and closing pushes out what is queued: TCP_NODELAY is for a connection that stays
            // open after this answer, and, as nginx does, only such a one pays its system call.
            if (!nodelay && (!c.closing() || switched)) {
                (void)stream.set_nodelay();
                nodelay = true;
            }
            // A write_some loop, not stream.write(): that is a task, allocated per call.
            for (std::string_view out = c.output(); !out.empty();) {
                auto sent = co_await stream.write_some(out).with_stop_token(
                    watch.begin(waiting::client_to_read, c.requests_begun()));
                if (!sent) co_return;
                out.remove_prefix(*sent);
            }
            c.output().clear();
        }
        if (switched) {
            co_await hand_over(std::move(stream), c, rest, watch, self);
            co_return;
        }
        if (c.left_unread() || filled) co_await close_gently(stream, in);
    }

    // Without on_upgrade, nobody speaks the protocol agreed to: the connection ends.
    static io::task<void> hand_over(net::tcp_stream stream, const connection& c, std::span<const char> rest,
                                    watchdog::watch& watch, server& self) {
        if constexpr (upgrade_handler<Handler>) {
            (void)watch.begin(waiting::upgraded, c.requests_begun());
            upgraded u{std::move(stream), &c.current(), rest};
            co_await self.handler_.on_upgrade(std::move(u));
        }
    }

    Handler& handler_;
    const limits limits_;
    std::stop_token drain_;
    watchdog dog_;  // before the scopes: their tasks hold watches on it
    io::scope clock_;
    io::scope connections_;
};

}  // namespace cluster::http
