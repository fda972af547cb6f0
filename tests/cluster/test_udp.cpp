// UDP in a cluster (Node's dgram), with real processes (fork mode) and real loopback clients:
// shared and reuseport on IPv4 and IPv6 with every worker answering on the one port port 0
// got, which socket each worker receives from, a socket that outlives a killed worker, the
// schedules that cannot serve UDP refused, closing and listening again, a disconnected
// worker's receive ending, and a worker's own UDP socket announced.
//
// Note for g++ 12: results of co_await are always named before they are tested.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/connections.hpp"
#include "support/descriptors.hpp"
#include "support/loopback.hpp"
#include "support/primary.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

using namespace cluster;
using namespace std::chrono_literals;
using support::listen_result;
using support::note;
using support::proto;

namespace {

// What the test's workers do once they listen: "echo" answers every datagram with
// "<worker id> <payload>"; "once" answers one and receives no more; "relisten" closes its
// socket and listens again first, then echoes.
constexpr const char* mode_env = "CLUSTER_TEST_UDP_MODE";

std::string env_or(const char* name, std::string fallback = {}) {
    const char* value = std::getenv(name);
    return value ? value : fallback;
}

// ---- the workers (they run in the worker processes: no Catch macros there) ----

task<void> tell(worker<proto>& w, std::string text) {
    const note n{w.id(), std::move(text)};
    (void)co_await w.send(n);
}

task<void> echo(worker<proto>& w, udp_socket& s, bool once) {
    std::array<char, 65536> buf{};
    for (;;) {
        auto d = co_await s.receive_from(buf);
        if (!d) {
            co_await tell(w, "receive ended: " + d.error().message());
            co_return;
        }
        const std::string answer = std::to_string(w.id()) + " " + std::string(buf.data(), d->size);
        auto sent = co_await s.send_to(answer, d->from);
        if (!sent) co_await tell(w, "send_to failed: " + sent.error().message());
        if (once) co_return;
    }
}

// Listens as the environment says (no schedule named: the default), the throwing form too
// when try_listen() failed, and reports how it went.
task<result<udp_socket>> listen_as_set(worker<proto>& w, const udp_endpoint& at, listen_result& r) {
    const std::string how = env_or(support::setting::schedule);
    if (how.empty()) co_return co_await w.try_listen(at);
    const schedule s = parse_schedule(how).value();
    const std::size_t fds = support::open_fd_count();
    auto opened = co_await w.try_listen(at, s);
    if (opened) co_return opened;
    try {
        auto again = co_await w.listen(at, s);
        r.what = "listen() succeeded after try_listen() failed";
    } catch (const std::system_error& e) {
        r.what = e.what();
    }
    if (support::open_fd_count() != fds) r.what += " [descriptors leaked]";
    co_return opened;
}

task<void> udp_worker(worker<proto>& w) {
    const udp_endpoint at(env_or(support::setting::endpoint));
    const std::string mode = env_or(mode_env, "echo");
    listen_result r;
    r.worker_id = w.id();
    auto opened = co_await listen_as_set(w, at, r);
    if (opened && mode == "relisten") {
        auto closed = co_await opened->close();
        if (!closed) co_await tell(w, "close failed: " + closed.error().message());
        opened = co_await listen_as_set(w, at, r);
    }
    if (!opened) {
        r.error = opened.error().value();
        r.category = opened.error().category().name();
    } else {
        const auto local = opened->local().value();
        r.local = local.to_string();
        r.port = local.port();
    }
    (void)co_await w.send(r);
    if (!opened) {
        while (auto m = co_await w.receive()) {}
        co_return;
    }
    struct stat st {};
    ::fstat(opened->native_handle(), &st);
    co_await tell(w, "socket " + std::to_string(st.st_ino));
    scope serving;
    serving.spawn(echo(w, *opened, mode == "once"));
    while (auto m = co_await w.receive()) {}
    co_await serving.join();
}

// A UDP socket of the worker's own, announced: the primary's listening event says udp4.
task<void> announce_own(worker<proto>& w) {
    auto own = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    auto announced = co_await w.announce_listening(own.native_handle());
    const support::bound_port port{announced ? own.local().value().port() : std::uint16_t{0}};
    (void)co_await w.send(port);
    while (auto m = co_await w.receive()) {}
}

// ---- the test's side ----

primary_options udp_options_for(std::string how, std::string where = "udp:127.0.0.1:0", std::string mode = "echo") {
    primary_options o;
    o.restart.mode = restart_mode::temporary;
    o.env[support::setting::endpoint] = std::move(where);
    o.env[support::setting::schedule] = std::move(how);
    o.env[mode_env] = std::move(mode);
    return o;
}

template <class Body>
void with_udp_primary(primary_options o, Body&& body) {
    support::with_primary<proto>(std::move(o), udp_worker, std::forward<Body>(body));
}

// `payload` from `client` to `to`: who answered it.
task<unsigned> answered_by(udp_socket& client, udp_endpoint to, std::string payload) {
    auto sent = co_await client.send_to(payload, to);
    REQUIRE(sent.has_value());
    std::array<char, 512> buf{};
    auto got = co_await support::bounded(client.receive_from(buf), "an answer");
    REQUIRE(got.has_value());
    const std::string_view text(buf.data(), got->size);
    INFO("answer: " << text);
    const auto space = text.find(' ');
    REQUIRE(space != std::string_view::npos);
    CHECK(text.substr(space + 1) == payload);
    unsigned id = 0;
    std::from_chars(text.data(), text.data() + space, id);
    co_return id;
}

// Datagrams from fresh clients (new source ports, which reuseport's hash spreads) until
// `want` workers have answered, or 64 have been sent: the workers that answered.
task<std::set<unsigned>> answering_workers(udp_endpoint to, std::size_t want) {
    std::set<unsigned> ids;
    for (int i = 0; i < 64 && ids.size() < want; ++i) {
        auto client = udp_socket::bind(udp_endpoint(to.family() == AF_INET6 ? "udp:[::1]:0" : "udp:127.0.0.1:0"));
        ids.insert(co_await answered_by(client, to, "datagram " + std::to_string(i)));
    }
    co_return ids;
}

// The sockfs inode of the socket each worker receives from, from its "socket <inode>" notes.
task<std::set<std::string>> sockets_of(primary<proto>& p, std::size_t workers) {
    std::set<std::string> sockets;
    for (std::size_t i = 0; i < workers; ++i) sockets.insert((co_await support::note_starting(p, "socket ")).text);
    co_return sockets;
}

}  // namespace

TEST_CASE("shared and reuseport, IPv4 and IPv6: every worker answers, on the port port 0 got, events say udp4/udp6") {
    const schedule how = GENERATE(schedule::shared, schedule::reuseport);
    const bool v6 = GENERATE(false, true);
    INFO(to_string(how) << (v6 ? " on [::1]" : " on 127.0.0.1"));
    if (v6 && !support::ipv6_loopback_available()) {
        WARN("skipped: this machine has no IPv6 loopback (::1)");
        return;
    }
    // shared: each worker answers once, so the second datagram must reach the other worker.
    const std::string mode = how == schedule::shared ? "once" : "echo";
    auto o = udp_options_for(to_string(how), v6 ? "udp:[::1]:0" : "udp:127.0.0.1:0", mode);
    with_udp_primary(o, [&](primary<proto>& p) -> task<void> {
        for (int i = 0; i < 2; ++i) (void)co_await support::fork_worker(p);
        std::set<std::uint16_t> ports;
        for (int i = 0; i < 2; ++i) {
            const auto e = co_await support::bounded(p.next<listening_event>());
            CHECK(e.udp);
            CHECK(e.family == (v6 ? AF_INET6 : AF_INET));
            CHECK(e.address == (v6 ? "::1" : "127.0.0.1"));
            CHECK(std::string(e.address_type()) == (v6 ? "udp6" : "udp4"));
            ports.insert(e.port);
        }
        REQUIRE(ports.size() == 1);
        const std::uint16_t port = *ports.begin();
        CHECK(port != 0);
        for (int i = 0; i < 2; ++i) {
            const auto r = co_await support::listening(p);
            CHECK(r.port == port);
        }
        const udp_endpoint at = endpoint::udp(v6 ? "::1" : "127.0.0.1", port);
        const auto ids = co_await answering_workers(at, 2);
        CHECK(ids.size() == 2);
    });
}

TEST_CASE("shared (the default) gives every worker the primary's one socket, reuseport each its slot's own") {
    const std::string how = GENERATE(std::string(), std::string("shared"), std::string("reuseport"));
    INFO("schedule: " << (how.empty() ? "(default)" : how));
    with_udp_primary(udp_options_for(how), [&](primary<proto>& p) -> task<void> {
        for (int i = 0; i < 3; ++i) (void)co_await support::fork_worker(p);
        const auto sockets = co_await sockets_of(p, 3);
        CHECK(sockets.size() == (how == "reuseport" ? 3u : 1u));
    });
}

TEST_CASE("the socket outlives a killed worker: its replacement receives what came while the slot was empty") {
    const schedule how = GENERATE(schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    auto o = udp_options_for(to_string(how));
    o.restart.mode = restart_mode::permanent;
    with_udp_primary(o, [&](primary<proto>& p) -> task<void> {
        (void)co_await support::fork_worker(p);
        const auto first = co_await support::listening(p);
        const auto socket = (co_await support::note_starting(p, "socket ")).text;
        const udp_endpoint at = endpoint::udp("127.0.0.1", first.port);
        auto client = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
        const unsigned before = co_await answered_by(client, at, "before");
        CHECK(before == first.worker_id);

        REQUIRE(support::worker_of(p, before).kill(SIGKILL).has_value());
        for (;;) {
            const auto e = co_await support::bounded(p.next<exit_event>());
            if (e.worker_id == before) break;
        }
        auto sent = co_await client.send_to(std::string_view("while none listens"), at);
        REQUIRE(sent.has_value());
        const auto next = co_await support::listening(p);
        CHECK(next.port == first.port);
        const auto again = (co_await support::note_starting(p, "socket ")).text;
        CHECK(again == socket);
        std::array<char, 512> buf{};
        auto got = co_await support::bounded(client.receive_from(buf), "the queued datagram's answer");
        REQUIRE(got.has_value());
        CHECK(std::string_view(buf.data(), got->size) == std::to_string(next.worker_id) + " while none listens");
        CHECK(next.worker_id != before);
    });
}

TEST_CASE("a schedule that cannot serve UDP: EINVAL from try_listen, std::system_error from listen, nothing leaked") {
    const schedule how =
        GENERATE(schedule::round_robin, schedule::sticky, schedule::least_connections, schedule::custom);
    INFO(to_string(how));
    auto o = udp_options_for(to_string(how));
    o.pick = [](const endpoint&, std::span<const candidate> live) { return live.front().worker_id; };
    with_udp_primary(o, [&](primary<proto>& p) -> task<void> {
        (void)co_await support::fork_worker(p);
        const auto m = co_await support::bounded(p.next_message<listen_result>());
        const auto& r = m.value;
        INFO(r.what);
        CHECK(r.error == EINVAL);
        CHECK(r.category == std::system_category().name());
        CHECK(r.what.starts_with("cluster: worker " + std::to_string(r.worker_id) +
                                 " cannot listen on udp:127.0.0.1:0: "));
        CHECK(r.what.find(std::string("schedule ") + to_string(how) + " cannot serve UDP") != std::string::npos);
        CHECK(r.what.find("use shared or reuseport") != std::string::npos);
        CHECK(r.what.find("[descriptors leaked]") == std::string::npos);
    });
}

TEST_CASE("closing a worker's UDP socket tells the primary: the worker listens there again and is answered") {
    const schedule how = GENERATE(schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    with_udp_primary(udp_options_for(to_string(how), "udp:127.0.0.1:0", "relisten"),
                     [&](primary<proto>& p) -> task<void> {
                         (void)co_await support::fork_worker(p);
                         const auto r = co_await support::listening(p);
                         auto client = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
                         const unsigned id = co_await answered_by(client, endpoint::udp("127.0.0.1", r.port), "again");
                         CHECK(id == r.worker_id);
                     });
}

TEST_CASE("a disconnected worker's receive ends with listener_closed, and the worker exits cleanly") {
    const schedule how = GENERATE(schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    with_udp_primary(udp_options_for(to_string(how)), [&](primary<proto>& p) -> task<void> {
        auto& h = co_await support::fork_worker(p);
        const unsigned id = h.id();
        (void)co_await support::listening(p);
        (void)co_await support::note_starting(p, "socket ");
        auto left = co_await support::bounded(h.disconnect());
        CHECK(left.has_value());
        const auto ended = co_await support::note_starting(p, "receive ended");
        CHECK(ended.text == "receive ended: " + make_error_code(errc::listener_closed).message());
        const auto e = co_await support::bounded(p.next<exit_event>());
        CHECK(e.worker_id == id);
        CHECK(e.status.success());
    });
}

TEST_CASE("a UDP socket a worker opened itself and announced: the listening event says udp4, with its port") {
    primary_options o;
    o.restart.mode = restart_mode::temporary;
    support::with_primary<proto>(o, announce_own, [](primary<proto>& p) -> task<void> {
        (void)co_await support::fork_worker(p);
        const auto e = co_await support::bounded(p.next<listening_event>());
        const auto bound = co_await support::bounded(p.next_message<support::bound_port>());
        CHECK(e.udp);
        CHECK(std::string(e.address_type()) == "udp4");
        CHECK(e.port == bound.value.port);
        CHECK(e.port != 0);
    });
}
