// support: a worker whose listeners the test opens and closes by command — each served with the
// line protocol — and the test's side of it: commands, requests answered later, held sockets.
#pragma once

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "connections.hpp"

namespace support {

namespace setting {
// The socket file's mode a listener_worker asks for, in octal ("660"); none if unset.
inline constexpr const char* mode = "CLUSTER_TEST_MODE";
// The listen_options::defer_accept it asks for, in seconds; none if unset.
inline constexpr const char* defer_accept = "CLUSTER_TEST_DEFER_ACCEPT";
}  // namespace setting

namespace listener_worker {

inline std::string env_or(const char* name, std::string fallback = {}) {
    const char* value = cluster::getenv(name);  // a thread worker's env option too
    return value ? value : fallback;
}

// One request on the connection ("c <payload>"), answered "<worker id> <payload>", then
// closed. A worker that is leaving drops a connection that has not asked yet. The payload
// "freeze" stops the worker dead once read, a hung worker's loop: no answer, no heartbeat.
inline cluster::task<void> serve_one(cluster::worker<proto>& w, cluster::tcp_stream s) {
    std::string got;
    std::array<char, 256> buf{};
    while (got.find('\n') == std::string::npos) {
        auto n = co_await s.read_some(std::span(buf)).with_stop_token(w.stop_token());
        if (!n || *n == 0) co_return;
        got.append(buf.data(), *n);
    }
    const std::string line = got.substr(0, got.find('\n'));
    if (line == "c freeze")
        for (;;) ::pause();
    const std::string reply = std::to_string(w.id()) + " " + (line.size() > 2 ? line.substr(2) : "") + "\n";
    (void)co_await s.write(std::span(reply.data(), reply.size()));
    (void)co_await s.close();
}

inline cluster::task<void> tell(cluster::worker<proto>& w, std::string text) {
    const note n{w.id(), std::move(text)};
    (void)co_await w.send(n);
}

// Serves what the listener gives until it gives no more; any other failure is told to the
// primary, and ends it too.
inline cluster::task<void> accept_all(cluster::worker<proto>& w, cluster::listener& l, cluster::scope& serving) {
    for (;;) {
        auto s = co_await l.accept();
        if (s) {
            serving.spawn(serve_one(w, std::move(*s)));
            continue;
        }
        if (s.error() != cluster::errc::listener_closed && s.error() != std::errc::operation_canceled)
            co_await tell(w, "accept: " + s.error().message());
        co_return;
    }
}

// Listens as the settings say, reports how it went, and serves what the listener gives.
inline cluster::task<void> listen_again(cluster::worker<proto>& w, std::deque<cluster::listener>& listeners,
                                        cluster::scope& serving) {
    const cluster::endpoint at = cluster::endpoint::parse(env_or(setting::endpoint, "127.0.0.1:0")).value();
    const auto how = cluster::parse_schedule(env_or(setting::schedule)).value_or(cluster::schedule::round_robin);
    cluster::listener_options lo;
    if (const auto mode = env_or(setting::mode); !mode.empty())
        lo.socket.mode = static_cast<mode_t>(std::stoul(mode, nullptr, 8));
    if (const auto defer = env_or(setting::defer_accept); !defer.empty())
        lo.socket.defer_accept = std::chrono::seconds(std::stoul(defer));
    auto opened = co_await w.try_listen(at, how, lo);
    listen_result r;
    r.worker_id = w.id();
    if (!opened) {
        r.error = opened.error().value();
        r.category = opened.error().category().name();
        try {
            (void)co_await w.listen(at, how, lo);
        } catch (const std::system_error& e) {
            r.what = e.what();
        }
    } else {
        r.local = opened->local().to_string();
        r.port = opened->local().port();
        listeners.push_back(std::move(*opened));
        serving.spawn(accept_all(w, listeners.back(), serving));
    }
    (void)co_await w.send(r);
}

// Listens once, then as the primary commands: "listen" once more; "close <n>" closes its
// n-th listener (from 0) and says "closed <n>"; "throw" throws out of main, as a failing
// worker does. Pings are answered.
inline cluster::task<void> main(cluster::worker<proto>& w) {
    std::deque<cluster::listener> listeners;
    cluster::scope serving;  // after the listeners: destroyed first, its accept loops with it
    co_await listen_again(w, listeners, serving);
    while (auto m = co_await w.receive()) {
        if (m->is<ping>()) {
            pong answer;
            answer.worker_id = w.id();
            (void)co_await w.reply(*m, answer);
            continue;
        }
        const auto* c = m->get_if<command>();
        if (!c) continue;
        if (c->text == "listen") {
            co_await listen_again(w, listeners, serving);
        } else if (c->text.starts_with("close ")) {
            listeners.at(std::stoul(c->text.substr(6))).close();
            co_await tell(w, "closed " + c->text.substr(6));
        } else if (c->text == "throw") {
            throw std::runtime_error("thrown on purpose by the test's worker");
        }
    }
    co_await serving.join();
}

}  // namespace listener_worker

// with_primary() for listener_workers.
template <class Body>
void with_listener_workers(cluster::primary_options o, Body&& body) {
    with_primary<proto>(std::move(o), listener_worker::main, std::forward<Body>(body));
}

// Sends worker id a command, and for "close <n>" waits until it says it did: the primary has
// then handled the close too, which the worker told it first.
inline cluster::task<void> order(cluster::primary<proto>& p, unsigned id, std::string text) {
    const command c{text};
    auto sent = co_await worker_of(p, id).send(c);
    REQUIRE(sent.has_value());
    if (text.starts_with("close ")) (void)co_await note_starting(p, "closed " + text.substr(6));
}

// Why a new connection to `to` fails; none if it connects.
inline cluster::task<std::error_code> refusal(cluster::endpoint to) {
    auto s = co_await dial(to);
    co_return s ? std::error_code{} : s.error();
}

inline bool file_exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace support
