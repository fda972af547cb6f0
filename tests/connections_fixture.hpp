// What the connection tests share: the workers' protocol and behaviours (a line server on a
// listener, picked by environment), and the test's own clients: request/response on new or
// kept-alive connections, from a chosen loopback address, and the bounded waits around them.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/describe.hpp>

#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support.hpp"

namespace conn {

using namespace std::chrono_literals;

// ---- the protocol between the test (the primary) and its workers ----

// Worker to primary, once: how its listen went. error 0: it listens on `local`.
struct listen_result {
    std::uint32_t worker_id = 0;
    std::int32_t error = 0;  // the error code's value, in `category`
    std::string category;    // the error code's category name
    std::string what;        // listen()'s exception text, when it failed
    std::string local;       // listener::local(), when it listens
    std::uint16_t port = 0;
};
BOOST_DESCRIBE_STRUCT(listen_result, (), (worker_id, error, category, what, local, port))

// Worker to primary: something happened ("holding 7", "closed", "listener closed", ...).
struct note {
    std::uint32_t worker_id = 0;
    std::string text;
};
BOOST_DESCRIBE_STRUCT(note, (), (worker_id, text))

// Primary to worker: "close_listener".
struct command {
    std::string text;
};
BOOST_DESCRIBE_STRUCT(command, (), (text))

// Primary to worker, as a request: answered with a pong. Its answer comes after every
// message the worker sent before it, handoff answers included.
struct ping {
    std::uint32_t n = 0;
};
BOOST_DESCRIBE_STRUCT(ping, (), (n))

struct pong {
    std::uint32_t worker_id = 0;
    std::uint64_t accepted = 0;  // listener::accepted()
    std::uint64_t open = 0;      // listener::connections()
};
BOOST_DESCRIBE_STRUCT(pong, (), (worker_id, accepted, open))

using proto = cluster::protocol<listen_result, note, command, ping, pong>;

// ---- what a worker does, from its environment (fork mode: set in the child by the primary) ----

inline constexpr const char* endpoint_env = "CONN_ENDPOINT";
inline constexpr const char* schedule_env = "CONN_SCHEDULE";
inline constexpr const char* max_env = "CONN_MAX_CONNECTIONS";
inline constexpr const char* behaviour_env = "CONN_BEHAVIOUR";
inline constexpr const char* note_closes_env = "CONN_NOTE_CLOSES";
// A port: the worker first says "inherited <n>", the connections on it it holds unasked.
inline constexpr const char* inherited_port_env = "CONN_INHERITED_PORT";

namespace behaviour {
// Listens and serves the line protocol until disconnected.
inline constexpr const char* serve = "serve";
// Listens and takes nothing until disconnected (or told to close its listener); then
// serves what accept() still gives.
inline constexpr const char* lazy = "lazy";
}  // namespace behaviour

// A connection's first request is awaited this long once the worker is leaving.
inline constexpr auto first_request_grace = 2s;

struct worker_settings {
    std::string where = "127.0.0.1:0";
    cluster::schedule how = cluster::schedule::round_robin;
    std::size_t max_connections = 0;
    std::string behaviour = behaviour::serve;
    bool note_closes = false;
};

inline std::string env_or(const char* name, std::string fallback) {
    const char* v = std::getenv(name);
    return v ? std::string(v) : fallback;
}

inline worker_settings settings_from_env() {
    worker_settings s;
    s.where = env_or(endpoint_env, s.where);
    if (auto how = cluster::parse_schedule(env_or(schedule_env, "round_robin"))) s.how = *how;
    s.max_connections = std::strtoul(env_or(max_env, "0").c_str(), nullptr, 10);
    s.behaviour = env_or(behaviour_env, s.behaviour);
    s.note_closes = env_or(note_closes_env, "0") == "1";
    return s;
}

// This process's sockets accepted on `port`: connected, with `port` as their own end. A
// worker forked by the primary has none before it takes a connection; one it has then is a
// client's connection the primary held, and which now stays open as long as this copy.
inline std::size_t accepted_on_port(std::uint16_t port) {
    std::size_t n = 0;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        const int fd = std::stoi(entry.path().filename().string());
        int listening = 1;
        socklen_t len = sizeof listening;
        if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) continue;
        auto local = cluster::local_endpoint(fd);
        if (local && local->is_ip() && local->port() == port) ++n;
    }
    return n;
}

namespace detail {

inline cluster::task<void> tell(cluster::worker<proto>& w, std::string text) {
    const note n{w.id(), std::move(text)};
    (void)co_await w.send(n);
}

// The line protocol. A request is "<c> <payload>\n"; the answer "<worker id> <payload>\n".
//   c: answer, then close;  k: answer, keep the connection;
//   s: say "holding <payload>" to the primary, answer only once the worker is leaving.
// A leaving worker answers what it was asked, then closes; it closes an idle connection
// that already served a request, and gives a fresh one first_request_grace to ask.
inline cluster::task<void> serve(cluster::worker<proto>& w, cluster::tcp_stream s, bool note_closes) {
    std::string pending;
    std::array<char, 512> buf{};
    bool served = false;
    for (;;) {
        const auto nl = pending.find('\n');
        if (nl == std::string::npos) {
            cluster::result<std::size_t> n;
            if (w.stopping()) {
                if (served) break;
                n = co_await s.read_some(std::span(buf)).with_timeout(first_request_grace);
            } else {
                n = co_await s.read_some(std::span(buf)).with_stop_token(w.stop_token());
                if (!n && n.error() == std::errc::operation_canceled) continue;  // leaving: look again
            }
            if (!n || *n == 0) break;
            pending.append(buf.data(), *n);
            continue;
        }
        const std::string line = pending.substr(0, nl);
        pending.erase(0, nl + 1);
        const char c = line.empty() ? '?' : line[0];
        const std::string payload = line.size() > 2 ? line.substr(2) : "";
        if (c == 's') {
            co_await tell(w, "holding " + payload);
            (void)co_await cluster::io::sleep_for(std::chrono::hours(1)).with_stop_token(w.stop_token());
        }
        const std::string reply = std::to_string(w.id()) + " " + payload + "\n";
        auto sent = co_await s.write(std::span(reply.data(), reply.size()));
        if (!sent) break;
        served = true;
        if (c == 'c' || w.stopping()) break;
    }
    (void)co_await s.close();
    if (note_closes) co_await tell(w, "closed");
}

// Serves what the listener gives until it gives no more; returns why it stopped.
inline cluster::task<std::error_code> accept_all(cluster::worker<proto>& w, cluster::listener& l, cluster::scope& conns,
                                                 bool note_closes) {
    for (;;) {
        auto s = co_await l.accept();
        if (s) {
            conns.spawn(serve(w, std::move(*s), note_closes));
            continue;
        }
        if (s.error() == cluster::errc::listener_closed || s.error() == std::errc::operation_canceled)
            co_return s.error();
        co_await tell(w, "accept: " + s.error().message());
        (void)co_await cluster::io::sleep_for(10ms).with_stop_token(w.stop_token());
    }
}

inline cluster::task<void> messages(cluster::worker<proto>& w, cluster::listener& l) {
    while (auto m = co_await w.receive()) {
        if (m->is<ping>()) {
            const pong answer{w.id(), l.accepted(), l.connections()};
            (void)co_await w.reply(*m, answer);
        } else if (auto* c = m->get_if<command>(); c && c->text == "close_listener") {
            l.close();
            co_await tell(w, "listener closed");
        }
    }
}

inline cluster::task<void> drain(cluster::worker<proto>& w) {
    while (auto m = co_await w.receive()) {}
}

}  // namespace detail

// worker_main for every connection test.
inline cluster::task<void> worker_main(cluster::worker<proto>& w) {
    if (const auto port = env_or(inherited_port_env, ""); !port.empty())
        co_await detail::tell(w, "inherited " +
                                     std::to_string(accepted_on_port(static_cast<std::uint16_t>(std::stoul(port)))));
    const worker_settings s = settings_from_env();
    const cluster::endpoint at(s.where);
    cluster::listener_options lo;
    lo.max_connections = s.max_connections;
    auto opened = co_await w.try_listen(at, s.how, lo);
    listen_result r;
    r.worker_id = w.id();
    if (!opened) {
        r.error = opened.error().value();
        r.category = opened.error().category().name();
        try {
            (void)co_await w.listen(at, s.how, lo);
            r.what = "listen() succeeded after try_listen() failed";
        } catch (const std::system_error& e) {
            r.what = e.what();
        }
        (void)co_await w.send(r);
        co_await detail::drain(w);
        co_return;
    }
    cluster::listener l = std::move(*opened);
    r.local = l.local().to_string();
    r.port = l.local().port();
    (void)co_await w.send(r);
    (void)co_await w.ready();
    cluster::scope conns;
    if (s.behaviour == behaviour::lazy) {
        co_await detail::messages(w, l);
        const auto ended = co_await detail::accept_all(w, l, conns, s.note_closes);
        co_await detail::tell(w, "accept ended: " + ended.message());
    } else {
        cluster::scope background;
        background.spawn(detail::messages(w, l));
        (void)co_await detail::accept_all(w, l, conns, s.note_closes);
        co_await background.join();
    }
    co_await conns.join();
}

// ---- the test's side ----

// Long enough for a loaded CI machine under ASan; a bug fails here instead of hanging.
inline constexpr auto wait_limit = 10s;

template <class T>
inline constexpr bool is_result_v = false;
template <class T>
inline constexpr bool is_result_v<cluster::result<T>> = true;

// Awaits t, failing the test if it takes longer than `limit`. A task of result<U> gives
// its other failures back for the caller to check.
template <class T>
cluster::task<T> bounded(cluster::task<T> t, std::chrono::milliseconds limit = wait_limit) {
    auto r = co_await cluster::with_timeout(std::move(t), limit);
    if (!r && r.error() == std::errc::timed_out) FAIL("gave up waiting after " << limit.count() << " ms");
    if constexpr (is_result_v<T>)
        co_return r;
    else if constexpr (!std::is_void_v<T>)
        co_return std::move(*r);
}

inline cluster::task<void> joined(cluster::scope& s) { co_await s.join(); }

inline bool no_children() {
    siginfo_t info{};
    return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

// The workers' options: fork mode, nothing restarted unless a test says so.
inline cluster::primary_options options_for(cluster::schedule how, std::string where = "127.0.0.1:0") {
    cluster::primary_options o;
    o.restart.mode = cluster::restart_mode::temporary;
    o.env[endpoint_env] = std::move(where);
    o.env[schedule_env] = cluster::to_string(how);
    // For schedule::custom: the first live worker, which the tests that are about pick replace.
    o.pick = [](const cluster::endpoint&, std::span<const cluster::candidate> live) { return live.front().worker_id; };
    return o;
}

inline cluster::fork_options with_env(std::string name, std::string value) {
    cluster::fork_options f;
    f.env[std::move(name)] = std::move(value);
    return f;
}

inline const cluster::fork_options as_configured{};

// fork(), bounded; options by reference so no temporary sits in a co_await.
template <class P>
cluster::task<cluster::worker_handle<P>&> fork_worker(cluster::primary<P>& p,
                                                      const cluster::fork_options& o = as_configured) {
    auto h = co_await bounded(p.try_fork(o));
    if (!h) FAIL("fork failed: " << h.error().message());
    co_return **h;
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

// A whole test's body: its waits are bounded too, this is for one that is not.
inline constexpr auto body_limit = 30s;

// Runs body against a primary on a fresh loop, stops it, and checks that no descriptor and
// no child outlives the primary.
template <class Body>
void with_primary(cluster::primary_options o, Body&& body) {
    const std::size_t fds = test_support::open_fd_count();
    {
        cluster::io_context ctx;
        cluster::primary<proto> p(std::move(o), worker_main);
        cluster::sync_wait(bounded(body(p), body_limit));
        cluster::sync_wait(bounded(p.shutdown()));
    }
    CHECK(test_support::open_fd_count() == fds);
    CHECK(no_children());
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
struct answer {
    bool complete = false;   // a whole line came
    std::size_t bytes = 0;   // of the answer, whole or not
    unsigned worker_id = 0;  // who answered
    std::string payload;
    std::error_code error;  // why it is not complete
};

// Sends "<c> <payload>\n" and reads the answer's line, within `limit`.
inline cluster::task<answer> request(cluster::tcp_stream& s, char c, std::string payload,
                                     std::chrono::milliseconds limit = 5000ms) {
    answer a;
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

}  // namespace conn
