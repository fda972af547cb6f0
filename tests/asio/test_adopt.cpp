// Connections handed to Asio, on a listener fed as a worker's channel feeds it (no primary):
// adopt() makes a connected stream an Asio socket (TCP or Unix) that carries bytes both ways,
// the listener counts it until its lease ends (connections(), drained(), max_connections, the
// primary's close reports), cluster::asio::acceptor gives the handed connections and then
// listener_closed; and bad input: whatever is no connected stream of the socket's protocol, a
// second adoption, a listener with no socket of its own — a clear error, the stream left as it
// was, nothing leaked.
#include <catch2/catch.hpp>

#include <cluster/asio.hpp>
#include <cluster/cluster.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "support/both_loops.hpp"
#include "support/descriptors.hpp"
#include "support/loopback.hpp"
#include "support/waiting.hpp"

using namespace cluster;
using namespace std::chrono_literals;
namespace ba = boost::asio;
using support::bounded;
using support::on_both_loops;

namespace {

// What the listener tells the primary, written down.
struct recording_host final : net::detail::listener_host {
    std::vector<std::pair<std::uint64_t, bool>> acks;
    int closes = 0;
    std::size_t acks_sent = 0;  // acks.size() when the answers last had to leave at once
    void acknowledge(std::uint64_t seq, bool accepted) noexcept override { acks.emplace_back(seq, accepted); }
    void report_closed(std::uint32_t, bool) noexcept override { ++closes; }
    void report_unlisten(std::uint32_t) noexcept override {}
    void send_answers() noexcept override { acks_sent = acks.size(); }
};

// A listener the way a worker has one under a schedule where the primary hands connections.
std::shared_ptr<net::detail::listener_state> handed_state(recording_host& host, std::size_t max_connections = 0) {
    listener_options o;
    o.max_connections = max_connections;
    return std::make_shared<net::detail::listener_state>(&host, 1, schedule::round_robin, endpoint{}, unique_fd{}, o);
}

// What adopting `s` as a Socket says: the error, and the throwing form's message.
struct refusal {
    std::error_code error;
    std::string what;
};

template <class Socket = ba::ip::tcp::socket>
refusal adopting(ba::io_context& asio, tcp_stream& s) {
    refusal out;
    const int before = s.native_handle();
    auto tried = asio::try_adopt<Socket>(asio, std::move(s));
    REQUIRE_FALSE(tried.has_value());
    out.error = tried.error();
    CHECK(s.native_handle() == before);  // left as it was
    try {
        (void)asio::adopt<Socket>(asio, std::move(s));
        FAIL("adopt() did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == out.error);
        out.what = e.what();
    }
    CHECK(s.native_handle() == before);
    return out;
}

unique_fd socket_of(int family, int type) {
    unique_fd fd(::socket(family, type | SOCK_CLOEXEC, 0));
    REQUIRE(fd.valid());
    return fd;
}

}  // namespace

TEST_CASE("adopt() makes a TCP connection an Asio socket that carries bytes both ways, and a Unix one with local") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        auto listening = support::tcp_listener();
        auto pair = co_await support::connect_pair(listening.get());
        auto adopted = asio::adopt(asio, std::move(pair.server));
        CHECK_FALSE(pair.server.is_open());
        CHECK(adopted.socket.is_open());
        CHECK_FALSE(adopted.lease.counted());  // accepted outside any listener: nothing counts it
        auto guard = ba::make_work_guard(asio);
        scope s;
        s.spawn(asio::run(asio));
        const std::string ping = "ping";
        auto sent = co_await pair.client.write(ping);
        REQUIRE(sent.has_value());
        std::string got(4, '\0');
        auto read = co_await ba::async_read(adopted.socket, ba::buffer(got), asio::use_task);
        REQUIRE(read.has_value());
        CHECK(got == "ping");
        auto wrote = co_await ba::async_write(adopted.socket, ba::buffer(std::string_view("pong")), asio::use_task);
        REQUIRE(wrote.has_value());
        std::array<char, 4> back{};
        auto answered = co_await pair.client.read(back);
        REQUIRE(answered.has_value());
        CHECK(std::string(back.data(), 4) == "pong");

        auto [a, b] = support::make_socketpair();
        tcp_stream unix_stream(std::move(a));
        auto local = asio::adopt<ba::local::stream_protocol::socket>(asio, std::move(unix_stream));
        CHECK(local.socket.is_open());
        guard.reset();
        co_await s.join();
    });
}

TEST_CASE(
    "a listener counts an adopted connection until its lease ends: connections(), drained(), the primary's count") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        recording_host host;
        auto state = handed_state(host);
        listener l(state);
        auto listening = support::tcp_listener();
        auto pair = co_await support::connect_pair(listening.get());
        state->offer(7, pair.server.release());
        auto taken = co_await l.accept();
        REQUIRE(taken.has_value());
        CHECK(l.connections() == 1);
        auto adopted = asio::adopt(asio, std::move(*taken));
        CHECK(adopted.lease.counted());
        CHECK(l.connections() == 1);  // the socket left the stream, the count stayed
        CHECK(host.closes == 0);

        scope waiting;
        bool drained = false;
        waiting.spawn([](listener& l, bool& d) -> task<void> { d = co_await l.drained(); }(l, drained));
        (void)co_await io::nop();  // a turn of the loop: the waiter is parked, and not drained
        CHECK_FALSE(drained);
        adopted.socket.close();  // Asio closed it: the lease still counts it, until it ends
        CHECK(l.connections() == 1);
        adopted.lease.reset();
        CHECK(l.connections() == 0);
        CHECK(host.closes == 1);  // the primary hears of the close, as of a tcp_stream's
        co_await waiting.join();
        CHECK(drained);
        CHECK(l.accepted() == 1);
    });
}

TEST_CASE("max_connections counts adopted connections: at the limit the next is refused until a lease ends") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        recording_host host;
        auto state = handed_state(host, 1);
        listener l(state);
        auto listening = support::tcp_listener();
        auto first = co_await support::connect_pair(listening.get());
        auto second = co_await support::connect_pair(listening.get());
        state->offer(1, first.server.release());
        auto taken = co_await l.accept();
        REQUIRE(taken.has_value());
        auto adopted = asio::adopt(asio, std::move(*taken));
        state->offer(2, second.server.release());  // refused: one is open, and one is the limit
        REQUIRE(host.acks.size() == 2);
        CHECK(host.acks[1] == std::pair<std::uint64_t, bool>{2, false});
        adopted.lease.reset();
        CHECK(host.closes == 1);  // room again: the primary may offer it anew
    });
}

TEST_CASE("cluster::asio::acceptor gives the handed connections as Asio sockets, then listener_closed") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        recording_host host;
        auto state = handed_state(host);
        asio::acceptor acceptor(asio, listener(state));
        auto listening = support::tcp_listener();
        std::vector<tcp_stream> clients;
        for (std::uint64_t seq = 1; seq <= 3; ++seq) {
            auto pair = co_await support::connect_pair(listening.get());
            state->offer(seq, pair.server.release());
            clients.push_back(std::move(pair.client));
        }
        std::vector<std::string> log;
        ba::co_spawn(
            asio,
            [](asio::acceptor& a, std::vector<std::string>& log, const recording_host& h) -> ba::awaitable<void> {
                for (;;) {
                    auto [ec, c] = co_await a.async_accept(ba::experimental::as_tuple(ba::use_awaitable));
                    if (ec) {
                        log.push_back(ec == errc::listener_closed ? "listener_closed" : ec.message());
                        co_return;
                    }
                    log.push_back(std::to_string(a.listener().connections()) + " open, " + std::to_string(h.acks_sent) +
                                  " answered");
                    if (log.size() == 3) a.listener().close();
                }
            }(acceptor, log, host),
            ba::detached);
        co_await asio::run(asio);
        // Each answer leaves as its socket is given out: Asio closes one without a shutdown.
        CHECK(log == std::vector<std::string>{"1 open, 1 answered", "1 open, 2 answered", "1 open, 3 answered",
                                              "listener_closed"});
        CHECK(host.acks.size() == 3);
        CHECK(host.closes == 3);  // each connection dropped as its coroutine went on
    });
}

TEST_CASE(
    "cluster::asio::acceptor: a pending accept ends operation_aborted on cancel(), and on its handler's cancellation") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        recording_host host;
        asio::acceptor acceptor(asio, listener(handed_state(host)));
        std::vector<std::string> log;
        auto record = [&log](const boost::system::error_code& ec, asio::connection<>) {
            log.push_back(ec == ba::error::operation_aborted ? "aborted" : ec.message());
        };
        acceptor.async_accept(record);
        ba::post(asio, [&] { acceptor.cancel(); });
        co_await asio::run(asio);
        ba::cancellation_signal cancel;
        acceptor.async_accept(ba::bind_cancellation_slot(cancel.slot(), record));
        ba::post(asio, [&] { cancel.emit(ba::cancellation_type::terminal); });
        asio.restart();
        co_await asio::run(asio);
        CHECK(log == std::vector<std::string>{"aborted", "aborted"});
    });
}

// Regression: the native accept ended by both at once was taken as ended for the handed
// connection alone, and went on to give it, the caller's cancel lost.
TEST_CASE("cluster::asio::acceptor: a cancel as the primary hands a connection over ends the accept operation_aborted, "
          "and the next accept takes that connection") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        recording_host host;
        // shared: Asio accepts on the listener's own socket, until a connection is handed over.
        auto state = std::make_shared<net::detail::listener_state>(&host, 1, schedule::shared, endpoint{},
                                                                   support::tcp_listener(), listener_options{});
        asio::acceptor acceptor(asio, listener(state));
        auto elsewhere = support::tcp_listener();
        auto pair = co_await support::connect_pair(elsewhere.get());
        std::vector<std::string> log;
        auto record = [&log](const boost::system::error_code& ec, asio::connection<> c) {
            if (ec) return log.push_back(ec == ba::error::operation_aborted ? "aborted" : ec.message());
            log.push_back(c.socket.is_open() ? "connection" : "no socket");
        };
        ba::cancellation_signal cancel;
        SECTION("by cancel()") {
            acceptor.async_accept(record);
            ba::post(asio, [&] {
                state->offer(1, pair.server.release());
                acceptor.cancel();
            });
        }
        SECTION("by the handler's cancellation slot") {
            acceptor.async_accept(ba::bind_cancellation_slot(cancel.slot(), record));
            ba::post(asio, [&] {
                state->offer(1, pair.server.release());
                cancel.emit(ba::cancellation_type::terminal);
            });
        }
        co_await asio::run(asio);
        acceptor.async_accept(record);
        asio.restart();
        co_await asio::run(asio);
        CHECK(log == std::vector<std::string>{"aborted", "connection"});
        CHECK(host.acks == std::vector<std::pair<std::uint64_t, bool>>{{1, true}});
    });
}

TEST_CASE("adopt() refuses what is no connected stream of its protocol, saying why, the stream left as it was") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        SECTION("a stream that holds no socket: adopted before, or released") {
            auto listening = support::tcp_listener();
            auto pair = co_await support::connect_pair(listening.get());
            auto first = asio::adopt(asio, std::move(pair.server));
            const auto r = adopting(asio, pair.server);
            CHECK(r.error == std::errc::bad_file_descriptor);
            CHECK(r.what == "cluster: cannot adopt the connection: the stream holds no socket (adopted, released or "
                            "closed before): Bad file descriptor");
            CHECK(first.socket.is_open());
        }
        SECTION("a descriptor Asio already holds: the same connection adopted twice") {
            auto listening = support::tcp_listener();
            auto pair = co_await support::connect_pair(listening.get());
            const int fd = pair.server.native_handle();
            auto first = asio::adopt(asio, std::move(pair.server));
            tcp_stream again{unique_fd(fd)};
            const auto r = adopting(asio, again);
            CHECK(r.error == std::errc::file_exists);
            CHECK(r.what.find("already adopted") != std::string::npos);
            (void)again.release();  // Asio owns the descriptor: the stream must not close it
            CHECK(first.socket.is_open());
        }
        SECTION("a pipe") {
            auto [r_end, w_end] = support::make_pipe();
            tcp_stream s(std::move(r_end));
            const auto r = adopting(asio, s);
            CHECK(r.error == std::errc::not_a_socket);
            CHECK(r.what.find("not a socket") != std::string::npos);
        }
        SECTION("a datagram socket") {
            tcp_stream s(socket_of(AF_INET, SOCK_DGRAM));
            const auto r = adopting(asio, s);
            CHECK(r.error == std::errc::wrong_protocol_type);
            CHECK(r.what.find("not a stream socket") != std::string::npos);
        }
        SECTION("a listening socket") {
            tcp_stream s(support::tcp_listener());
            const auto r = adopting(asio, s);
            CHECK(r.error == std::errc::invalid_argument);
            CHECK(r.what.find("a listening socket, not a connection") != std::string::npos);
        }
        SECTION("a socket never connected") {
            tcp_stream s(socket_of(AF_INET, SOCK_STREAM));
            const auto r = adopting(asio, s);
            CHECK(r.error == std::errc::not_connected);
            CHECK(r.what.find("not connected") != std::string::npos);
        }
        SECTION("a Unix-domain stream as a TCP socket, and a TCP one as a Unix socket") {
            auto [a, b] = support::make_socketpair();
            tcp_stream unix_stream(std::move(a));
            const auto as_tcp = adopting(asio, unix_stream);
            CHECK(as_tcp.error == std::errc::address_family_not_supported);
            auto listening = support::tcp_listener();
            auto pair = co_await support::connect_pair(listening.get());
            const auto as_unix = adopting<ba::local::stream_protocol::socket>(asio, pair.server);
            CHECK(as_unix.error == std::errc::address_family_not_supported);
            CHECK(as_unix.what.find("another address family") != std::string::npos);
        }
    });
}

TEST_CASE("native_acceptor() is EINVAL where the primary accepts, and on a closed listener") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        recording_host host;
        listener l(handed_state(host));
        CHECK(l.native_handle() == -1);
        auto none = asio::try_native_acceptor(asio.get_executor(), l);
        REQUIRE_FALSE(none.has_value());
        CHECK(none.error() == std::errc::invalid_argument);
        std::string what;
        try {
            (void)asio::native_acceptor(asio.get_executor(), l);
        } catch (const std::system_error& e) {
            what = e.what();
        }
        CHECK(what.find("the listener has no socket of its own") != std::string::npos);
        co_return;
    });
}
