// support: what the connection tests do on the primary's side — line-serving scripted
// workers listening as a test says, and the test's own clients: request and answer on new
// or kept-alive connections, from a chosen loopback address.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "primary.hpp"
#include "scripted_worker.hpp"
#include "waiting.hpp"

namespace support {

// The six schedules, for the tests that hold under each.
inline constexpr cluster::schedule every_schedule[] = {cluster::schedule::round_robin,       cluster::schedule::shared,
                                                       cluster::schedule::reuseport,         cluster::schedule::sticky,
                                                       cluster::schedule::least_connections, cluster::schedule::custom};

// The workers' options: fork mode, nothing restarted unless a test says so.
inline cluster::primary_options options_for(cluster::schedule how, std::string where = "127.0.0.1:0") {
    cluster::primary_options o;
    o.restart.mode = cluster::restart_mode::temporary;
    o.env[behaviour_env] = behaviour::serve_lines;
    o.env[setting::endpoint] = std::move(where);
    o.env[setting::schedule] = cluster::to_string(how);
    // For schedule::custom: the first live worker, which the tests that are about pick replace.
    o.pick = [](const cluster::endpoint&, std::span<const cluster::candidate> live) { return live.front().worker_id; };
    return o;
}

inline cluster::fork_options with_env(std::string name, std::string value) {
    cluster::fork_options f;
    f.env[std::move(name)] = std::move(value);
    return f;
}

// Worker id's handle; fails the test if the primary no longer has it.
inline cluster::worker_handle<proto>& worker_of(cluster::primary<proto>& p, unsigned id) {
    auto* h = p.worker(id);
    INFO("worker " << id);
    REQUIRE(h != nullptr);
    return *h;
}

// The next listen_result, which must be a success; returns it.
inline cluster::task<listen_result> listening(cluster::primary<proto>& p) {
    auto m = co_await bounded(p.next_message<listen_result>());
    INFO("worker " << m.value.worker_id << ": " << m.value.what);
    REQUIRE(m.value.error == 0);
    co_return m.value;
}

// Where a worker listens, as its clients connect to it.
inline cluster::net::endpoint where(const listen_result& r) { return cluster::net::endpoint(r.local); }

// Forks n workers (as `o` says) and waits until each listens; returns where (the last one's view).
inline cluster::task<listen_result> start_listening(cluster::primary<proto>& p, std::size_t n,
                                                    const cluster::fork_options& o = as_configured) {
    for (std::size_t i = 0; i < n; ++i) (void)co_await fork_worker(p, o);
    listen_result last;
    for (std::size_t i = 0; i < n; ++i) last = co_await listening(p);
    co_return last;
}

// Waits for a note from a worker whose text starts with `prefix`; other notes are dropped.
inline cluster::task<note> note_starting(cluster::primary<proto>& p, std::string prefix) {
    for (;;) {
        auto m = co_await bounded(p.next_message<note>());
        if (m.value.text.starts_with(prefix)) co_return m.value;
    }
}

// A round trip to every live worker: what each sent before (handoff answers, closes) has
// been handled by the primary once this returns.
inline cluster::task<std::vector<pong>> ping_all(cluster::primary<proto>& p) {
    std::vector<pong> out;
    for (auto* h : p.workers()) {
        if (!h->is_connected()) continue;
        const ping q{1};
        auto r = co_await h->request<pong>(q, wait_limit);
        REQUIRE(r.has_value());
        out.push_back(*r);
    }
    co_return out;
}

// A client connection from `from` (an IPv4 address: all of 127/8 is loopback), or from
// wherever the kernel picks when empty.
inline cluster::task<cluster::result<cluster::tcp_stream>> dial(cluster::endpoint to, std::string from = {}) {
    if (from.empty()) co_return co_await cluster::connect(to);
    cluster::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) co_return cluster::errno_code(errno);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    if (::inet_pton(AF_INET, from.c_str(), &a.sin_addr) != 1)
        co_return std::make_error_code(std::errc::invalid_argument);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) co_return cluster::errno_code(errno);
    auto connected = co_await cluster::io::connect(fd.get(), to.data(), to.size());
    if (!connected) co_return connected.error();
    co_return cluster::tcp_stream(std::move(fd), to);
}

// What one request got back.
struct line_reply {
    bool complete = false;   // a whole line came
    std::size_t bytes = 0;   // of the answer, whole or not
    unsigned worker_id = 0;  // who answered
    std::string payload;
    std::error_code error;  // why it is not complete
};

// Sends "<c> <payload>\n" and reads the answer's line, within `limit`.
inline cluster::task<line_reply> request(cluster::tcp_stream& s, char c, std::string payload,
                                         std::chrono::milliseconds limit = 5000ms) {
    line_reply a;
    const std::string line = std::string(1, c) + " " + payload + "\n";
    auto sent = co_await cluster::with_timeout(s.write(std::span(line.data(), line.size())), limit);
    if (!sent) {
        a.error = sent.error();
        co_return a;
    }
    std::string got;
    std::array<char, 256> buf{};
    while (got.find('\n') == std::string::npos) {
        auto n = co_await s.read_some(std::span(buf)).with_timeout(limit);
        if (!n) {
            a.error = n.error();
            break;
        }
        if (*n == 0) {
            a.error = cluster::make_error_code(cluster::errc::eof);
            break;
        }
        got.append(buf.data(), *n);
        a.bytes = got.size();
    }
    const auto nl = got.find('\n');
    if (nl == std::string::npos) co_return a;
    const auto space = got.find(' ');
    if (space == std::string::npos || space > nl) {
        a.error = std::make_error_code(std::errc::bad_message);
        co_return a;
    }
    std::from_chars(got.data(), got.data() + space, a.worker_id);
    a.payload = got.substr(space + 1, nl - space - 1);
    a.complete = a.payload == payload;
    if (!a.complete) a.error = std::make_error_code(std::errc::bad_message);
    co_return a;
}

// A request (the line `<c> <payload>`) sent on a new connection, its answer read later (answer_of).
inline cluster::task<cluster::tcp_stream> ask_later(cluster::endpoint to, char c, std::string payload) {
    auto s = co_await dial(to);
    INFO("connect to " << to.to_string());
    REQUIRE(s.has_value());
    const std::string line = std::string(1, c) + " " + payload + "\n";
    auto sent = co_await s->write(std::span(line.data(), line.size()));
    REQUIRE(sent.has_value());
    co_return std::move(*s);
}

// Who answered the request sent on `s`; fails the test unless the answer came.
inline cluster::task<unsigned> answer_of(cluster::tcp_stream& s, std::string payload) {
    std::string got;
    std::array<char, 128> buf{};
    while (got.find('\n') == std::string::npos) {
        auto n = co_await s.read_some(std::span(buf)).with_timeout(wait_limit);
        INFO("answer to " << payload << ": " << (n ? "end of stream" : n.error().message()) << " after '" << got
                          << "'");
        REQUIRE(n.has_value());
        REQUIRE(*n > 0);
        got.append(buf.data(), *n);
    }
    const auto space = got.find(' ');
    REQUIRE(space != std::string::npos);
    CHECK(got.substr(space + 1) == payload + "\n");
    co_return static_cast<unsigned>(std::stoul(got.substr(0, space)));
}

// Sends end of stream: the worker sees it even when another process (a worker forked since)
// holds a copy of this client's socket, which close() alone would not.
inline void hang_up(cluster::tcp_stream& s) {
    if (s.is_open()) ::shutdown(s.native_handle(), SHUT_WR);
}

// One request on a new connection ("c": the worker closes it after answering): who
// answered. Fails the test unless it was answered.
inline cluster::task<unsigned> served_by(cluster::endpoint to, std::string payload = "x", std::string from = {}) {
    auto s = co_await dial(to, from);
    INFO("connect to " << to.to_string() << (from.empty() ? "" : " from ") << from);
    REQUIRE(s.has_value());
    auto a = co_await request(*s, 'c', payload);
    INFO("request: " << a.error.message());
    REQUIRE(a.complete);
    co_return a.worker_id;
}

// Who answered `count` requests, each on a new connection, and while fewer than `workers` had,
// more, up to 64 in all: under reuseport the kernel hashes each connection's ports to a
// socket, and 8 may all reach one of two workers (1 time in 128).
inline cluster::task<std::set<unsigned>> served_by_workers(cluster::endpoint to, int count, std::size_t workers) {
    std::set<unsigned> ids;
    for (int i = 0; i < 64 && (i < count || ids.size() < workers); ++i)
        ids.insert(co_await bounded(served_by(to, "r" + std::to_string(i))));
    co_return ids;
}

// A connection kept open at its worker ("k"), and who took it.
struct held {
    cluster::tcp_stream stream;
    unsigned worker_id = 0;
};

inline cluster::task<held> hold_one(cluster::endpoint to, std::string payload = "held") {
    auto s = co_await dial(to);
    REQUIRE(s.has_value());
    auto a = co_await request(*s, 'k', payload);
    INFO("request: " << a.error.message());
    REQUIRE(a.complete);
    held h{std::move(*s), a.worker_id};
    co_return std::move(h);
}

// Until the connection's other end closes: true for end of stream (or a reset), false if it
// stays open for `limit`.
inline cluster::task<bool> closed_by_peer(cluster::tcp_stream& s, std::chrono::milliseconds limit) {
    std::array<char, 64> buf{};
    for (;;) {
        auto n = co_await s.read_some(std::span(buf)).with_timeout(limit);
        if (!n) co_return n.error() != std::errc::timed_out;
        if (*n == 0) co_return true;
    }
}

}  // namespace support
