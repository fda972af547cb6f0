// cluster::udp_socket over real loopback sockets: datagrams both ways on IPv4 and IPv6 with
// the sender's address, port 0, truncation reported (never a silent cut), empty and
// exactly-fitting datagrams, oversized sends, SO_REUSEPORT, stop tokens and timeouts, a
// socket from a worker's listen() ending its receives when the worker leaves and telling the
// primary when it closes, and no leaked descriptors.
//
// Note for g++ 12: results of co_await are always named before they are tested.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/net/udp_endpoint.hpp>
#include <cluster/net/udp_socket.hpp>

#include "support/descriptors.hpp"
#include "support/loopback.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace cluster;
using namespace cluster::net;
using namespace std::chrono_literals;

namespace {

udp_endpoint local_of(const udp_socket& s) {
    auto ep = s.local();
    REQUIRE(ep.has_value());
    return *ep;
}

// `text` sent from `from` arrives whole at `to`, which says it came from `from`.
task<void> check_passes(udp_socket& from, udp_socket& to, std::string_view text) {
    auto sent = co_await from.send_to(text, local_of(to));
    REQUIRE(sent.has_value());
    std::array<char, 2048> buf{};
    auto got = co_await with_timeout(to.receive_from(buf), 10s);
    REQUIRE(got.has_value());
    CHECK(std::string_view(buf.data(), got->size) == text);
    CHECK(got->from == local_of(from));
}

// What a socket from a worker's listen() tells its worker, written down.
struct unlisten_log final : net::detail::listener_host {
    std::vector<std::uint32_t> unlistened;
    void acknowledge(std::uint64_t, bool) noexcept override {}
    void report_closed(std::uint32_t, bool) noexcept override {}
    void send_answers() noexcept override {}
    void report_unlisten(std::uint32_t listener) noexcept override { unlistened.push_back(listener); }
};

}  // namespace

TEST_CASE("IPv4: port 0 gets a port, and datagrams go both ways with their sender's address") {
    const std::size_t fds = support::open_fd_count();
    {
        auto server = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
        auto client = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
        CHECK(local_of(server).port() != 0);
        CHECK(local_of(server).address() == "127.0.0.1");
        CHECK((::fcntl(server.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
        sync_wait([&]() -> task<void> {
            co_await check_passes(client, server, "ping");
            co_await check_passes(server, client, "pong");
        }());
    }
    CHECK(support::open_fd_count() == fds);
}

TEST_CASE("IPv6: datagrams over ::1, and an IPv4 sender seen as ::ffff:127.0.0.1 by a dual-stack socket") {
    if (!support::ipv6_loopback_available()) {
        WARN(support::no_ipv6);
        return;
    }
    auto server = udp_socket::bind(endpoint::udp("::1", 0));
    auto client = udp_socket::bind(endpoint::udp("::1", 0));
    CHECK(local_of(server).family() == AF_INET6);
    sync_wait(check_passes(client, server, "over ipv6"));

    udp_options dual;
    dual.v6_only = false;
    auto any = udp_socket::bind(endpoint::udp("::", 0), dual);
    auto v4 = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    sync_wait([&]() -> task<void> {
        const auto to = endpoint::udp("127.0.0.1", local_of(any).port());
        auto sent = co_await v4.send_to(std::string_view("mapped"), to);
        REQUIRE(sent.has_value());
        std::array<char, 64> buf{};
        auto got = co_await with_timeout(any.receive_from(buf), 10s);
        REQUIRE(got.has_value());
        CHECK(got->from.address() == "::ffff:127.0.0.1");
        CHECK(got->from.port() == local_of(v4).port());
    }());
}

TEST_CASE("a datagram longer than the buffer is datagram_truncated, one that fits exactly, or is empty, is whole") {
    auto server = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    auto client = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    sync_wait([&]() -> task<void> {
        const auto to = local_of(server);
        const std::string big(100, 'x');
        const std::string exact(10, 'y');
        const std::string empty;
        const std::array<const std::string*, 3> in_order{&big, &exact, &empty};
        for (const std::string* d : in_order) {
            auto sent = co_await client.send_to(*d, to);
            REQUIRE(sent.has_value());
        }
        std::array<char, 10> buf{};
        auto cut = co_await with_timeout(server.receive_from(buf), 10s);
        REQUIRE_FALSE(cut.has_value());
        CHECK(cut.error() == errc::datagram_truncated);
        CHECK(std::string_view(buf.data(), buf.size()) == std::string_view(big).substr(0, 10));

        auto fits = co_await with_timeout(server.receive_from(buf), 10s);
        REQUIRE(fits.has_value());
        CHECK(fits->size == 10);
        CHECK(std::string_view(buf.data(), fits->size) == exact);

        auto none = co_await with_timeout(server.receive_from(buf), 10s);
        REQUIRE(none.has_value());
        CHECK(none->size == 0);
        CHECK(none->from == local_of(client));
    }());
}

TEST_CASE("a send larger than a datagram holds is EMSGSIZE, and nothing arrives") {
    auto server = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    auto client = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    sync_wait([&]() -> task<void> {
        const std::vector<char> huge(70000, 'h');
        auto sent = co_await client.send_to(huge, local_of(server));
        REQUIRE_FALSE(sent.has_value());
        CHECK(sent.error() == std::errc::message_size);
        std::array<char, 16> buf{};
        auto nothing = co_await with_timeout(server.receive_from(buf), 50ms);
        REQUIRE_FALSE(nothing.has_value());
        CHECK(nothing.error() == std::errc::timed_out);
    }());
}

TEST_CASE("receive_from answers the awaiting task's stop token, and with_timeout bounds it") {
    auto server = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    sync_wait([&]() -> task<void> {
        std::array<char, 16> buf{};
        std::stop_source stop;
        stop.request_stop();
        auto stopped = co_await server.receive_from(buf).with_stop_token(stop.get_token());
        REQUIRE_FALSE(stopped.has_value());
        CHECK(stopped.error() == std::errc::operation_canceled);

        auto late = co_await with_timeout(server.receive_from(buf), 20ms);
        REQUIRE_FALSE(late.has_value());
        CHECK(late.error() == std::errc::timed_out);
    }());
}

TEST_CASE("bind: the address in use is refused with the step named, unless every socket asks for SO_REUSEPORT") {
    const std::size_t fds = support::open_fd_count();
    {
        auto first = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
        const auto taken = local_of(first);
        auto again = udp_socket::try_bind(taken);
        REQUIRE_FALSE(again.has_value());
        CHECK(again.error() == std::errc::address_in_use);
        try {
            (void)udp_socket::bind(taken);
            FAIL("bound twice");
        } catch (const std::system_error& e) {
            CHECK(std::string(e.what()) ==
                  "cluster: cannot bind " + taken.to_string() + ": bind: " + e.code().message());
        }

        udp_options shared;
        shared.reuse_port = true;
        auto a = udp_socket::bind(endpoint::udp("127.0.0.1", 0), shared);
        auto b = udp_socket::try_bind(local_of(a), shared);
        REQUIRE(b.has_value());
        CHECK(local_of(*b) == local_of(a));
    }
    CHECK(support::open_fd_count() == fds);
}

TEST_CASE("a socket from a worker's listen(): its worker leaving ends its receive, its close tells the primary once") {
    unlisten_log host;
    auto bound = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    const int fd = bound.native_handle();
    auto member = std::make_shared<net::detail::udp_membership>(&host, 7);
    udp_socket s(unique_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 0)), member);
    sync_wait([&]() -> task<void> {
        std::array<char, 16> buf{};
        scope waiting;
        result<datagram> got = make_error_code(errc::eof);
        waiting.spawn([](udp_socket& s, std::span<char> buf, result<datagram>& got) -> task<void> {
            got = co_await s.receive_from(buf);
        }(s, buf, got));
        co_await io::nop();  // the receive is in flight
        member->leave();
        co_await waiting.join();
        REQUIRE_FALSE(got.has_value());
        CHECK(got.error() == errc::listener_closed);
        auto after = co_await s.receive_from(buf);
        REQUIRE_FALSE(after.has_value());
        CHECK(after.error() == errc::listener_closed);
        // Sending still works: a leaving worker answers what it has received.
        auto sent = co_await s.send_to(std::string_view("bye"), local_of(bound));
        CHECK(sent.has_value());
        CHECK(host.unlistened.empty());
        auto closed = co_await s.close();
        CHECK(closed.has_value());
    }());
    CHECK(host.unlistened == std::vector<std::uint32_t>{7});
    CHECK_FALSE(s.is_open());
}

TEST_CASE("a socket from listen() tells the primary when destroyed or replaced by assignment, and not once detached") {
    unlisten_log host;
    auto bound = udp_socket::bind(endpoint::udp("127.0.0.1", 0));
    auto dup = [&] { return unique_fd(::fcntl(bound.native_handle(), F_DUPFD_CLOEXEC, 0)); };
    {
        udp_socket s(dup(), std::make_shared<net::detail::udp_membership>(&host, 1));
        udp_socket moved = std::move(s);
        s = udp_socket(dup(), std::make_shared<net::detail::udp_membership>(&host, 2));
        s = udp_socket{};
        CHECK(host.unlistened == std::vector<std::uint32_t>{2});
    }
    CHECK(host.unlistened == std::vector<std::uint32_t>{2, 1});
    auto member = std::make_shared<net::detail::udp_membership>(&host, 3);
    member->detach();
    { udp_socket s(dup(), member); }
    CHECK(host.unlistened == std::vector<std::uint32_t>{2, 1});
}
