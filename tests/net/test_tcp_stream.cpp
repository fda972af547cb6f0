// cluster::tcp_stream with accept() and connect() over real loopback sockets: both ends'
// addresses, a 1 MiB echo through partial reads and writes, writev of thousands of buffers,
// end of stream, a peer's reset, half-close, timeouts and stop tokens, and no leaked fds.
//
// Note for g++ 12: results of co_await are always named before they are tested.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/net/tcp_stream.hpp>

#include "support/descriptors.hpp"
#include "support/loopback.hpp"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace cluster;
using namespace cluster::net;
using namespace std::chrono_literals;

namespace {

using support::connect_pair;
using support::stream_pair;
using support::with_connected_pair;

// `text`, written whole on `from`, is read whole on `to`.
task<void> check_passes(tcp_stream& from, tcp_stream& to, std::string_view text) {
    auto sent = co_await from.write(text);
    REQUIRE(sent.has_value());
    std::string got(text.size(), '\0');
    auto read = co_await to.read(std::span(got));
    REQUIRE(read.has_value());
    CHECK(got == text);
}

// A small send buffer: every transfer below then takes many partial sends and receives.
// (A receive buffer far below loopback's 64 KiB MSS would stall TCP itself, on window
// probes.) No Nagle, which would wait out a delayed ACK every few kilobytes.
void shrink_send_buffer(tcp_stream& s) {
    const int size = 8192;
    REQUIRE(::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size) == 0);
    REQUIRE(s.set_nodelay().has_value());
}

std::vector<std::byte> pattern(std::size_t n) {
    std::vector<std::byte> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((i * 31 + i / 251) % 256);
    return out;
}

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST_CASE("accept and connect over TCP: peer() and local() name both ends") {
    with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](stream_pair& pair, int lfd) -> task<void> {
        auto server_peer = pair.server.peer();
        auto client_local = pair.client.local();
        REQUIRE(server_peer.has_value());
        REQUIRE(client_local.has_value());
        CHECK(*server_peer == *client_local);  // accept's address is the client's own
        auto client_peer = pair.client.peer();
        REQUIRE(client_peer.has_value());
        CHECK(*client_peer == local_endpoint(lfd).value());
        CHECK((::fcntl(pair.server.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);
        CHECK((::fcntl(pair.client.native_handle(), F_GETFD) & FD_CLOEXEC) != 0);

        co_await check_passes(pair.client, pair.server, "over tcp");
    });
}

TEST_CASE("accept and connect over a Unix-domain socket, whose client end is unnamed") {
    const std::string path = "/tmp/cluster-test-tcp-stream-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    with_connected_pair(endpoint::unix_socket(path), [](stream_pair& pair, int lfd) -> task<void> {
        auto server_peer = pair.server.peer();
        REQUIRE(server_peer.has_value());
        CHECK(server_peer->is_unnamed());
        auto client_peer = pair.client.peer();
        REQUIRE(client_peer.has_value());
        CHECK(*client_peer == local_endpoint(lfd).value());
        co_await check_passes(pair.server, pair.client, "unix");
    });
    ::unlink(path.c_str());
}

TEST_CASE("a 1 MiB echo goes through intact, across partial reads and partial writes") {
    with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](stream_pair& pair, int) -> task<void> {
        shrink_send_buffer(pair.server);
        shrink_send_buffer(pair.client);
        const auto sent = pattern(1 << 20);

        // Nobody reads yet, so one send takes only what the buffers hold.
        auto first = co_await pair.client.write_some(std::span(sent).first(256 * 1024));
        REQUIRE(first.has_value());
        CHECK(*first > 0);
        CHECK(*first < 256 * 1024);

        auto echo = [](tcp_stream& s) -> task<void> {
            std::byte buf[1000];
            for (;;) {
                auto n = co_await s.read_some(buf);
                REQUIRE(n.has_value());
                if (*n == 0) break;
                auto w = co_await s.write(std::span(buf, *n));
                REQUIRE(w.has_value());
            }
            auto done = co_await s.shutdown(SHUT_WR);
            REQUIRE(done.has_value());
        };
        auto send_rest = [](tcp_stream& s, std::span<const std::byte> rest) -> task<void> {
            auto w = co_await s.write(rest);
            REQUIRE(w.has_value());
            auto done = co_await s.shutdown(SHUT_WR);
            REQUIRE(done.has_value());
        };
        auto receive = [](tcp_stream& s, std::size_t size) -> task<std::vector<std::byte>> {
            std::vector<std::byte> got(size);
            auto r = co_await s.read(got);
            REQUIRE(r.has_value());
            std::byte more[1];
            auto eof = co_await s.read_some(more);
            REQUIRE(eof.has_value());
            CHECK(*eof == 0);
            co_return got;
        };
        auto [echoed, rest_sent, received] =
            co_await when_all(echo(pair.server), send_rest(pair.client, std::span(sent).subspan(*first)),
                              receive(pair.client, sent.size()));
        (void)echoed;
        (void)rest_sent;
        CHECK(received == sent);
    });
}

TEST_CASE("writev sends thousands of buffers in order, past IOV_MAX and across partial sends") {
    with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](stream_pair& pair, int) -> task<void> {
        shrink_send_buffer(pair.client);
        // A fixed receive buffer (no autotuning): with the reader late, the kernel holds
        // far less than is sent, so the first sendmsg can only be partial.
        const int rcvbuf = 64 * 1024;
        REQUIRE(::setsockopt(pair.server.native_handle(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) == 0);
        const auto bytes = pattern(300 * 1024);
        std::vector<iovec> iov;
        std::size_t at = 0;
        for (std::size_t i = 0; at < bytes.size(); ++i) {
            const std::size_t len = std::min<std::size_t>(i % 7 == 0 ? 0 : i % 211, bytes.size() - at);
            iov.push_back({const_cast<std::byte*>(bytes.data() + at), len});  // empty ones too
            at += len;
        }
        REQUIRE(iov.size() > 2 * static_cast<std::size_t>(IOV_MAX));
        const auto before = iov;

        auto send = [](tcp_stream& s, std::span<const iovec> v) -> task<void> {
            auto w = co_await s.writev(v);
            REQUIRE(w.has_value());
        };
        auto receive = [](tcp_stream& s, std::size_t size) -> task<std::vector<std::byte>> {
            auto late = co_await io::sleep_for(10ms);
            REQUIRE(late.has_value());
            std::vector<std::byte> got(size);
            auto r = co_await s.read(got);
            REQUIRE(r.has_value());
            co_return got;
        };
        auto [sent, received] = co_await when_all(send(pair.client, iov), receive(pair.server, bytes.size()));
        (void)sent;
        CHECK(received == bytes);
        for (std::size_t i = 0; i < iov.size(); ++i) {  // the caller's iovecs are untouched
            CHECK(iov[i].iov_base == before[i].iov_base);
            CHECK(iov[i].iov_len == before[i].iov_len);
        }
    });
}

TEST_CASE("end of stream: read_some yields 0, read reports errc::eof with what did arrive") {
    with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](stream_pair& pair, int) -> task<void> {
        auto w = co_await pair.client.write(std::string_view("abcd"));
        REQUIRE(w.has_value());
        auto closed = co_await pair.client.close();
        REQUIRE(closed.has_value());

        char buf[10] = {};
        auto r = co_await pair.server.read(buf);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == errc::eof);
        CHECK(std::string_view(buf, 4) == "abcd");
        auto again = co_await pair.server.read_some(buf);
        REQUIRE(again.has_value());
        CHECK(*again == 0);
        auto nothing = co_await pair.server.read(buf);  // at once, not a hang
        REQUIRE_FALSE(nothing.has_value());
        CHECK(nothing.error() == errc::eof);
    });
}

TEST_CASE("a peer's reset is ECONNRESET as a value, and writing after it raises no SIGPIPE") {
    support::sigpipe_default guard;
    with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](stream_pair& pair, int) -> task<void> {
        const linger abort_on_close{1, 0};  // close() sends RST instead of FIN
        REQUIRE(::setsockopt(pair.client.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                             sizeof abort_on_close) == 0);
        auto closed = co_await pair.client.close();
        REQUIRE(closed.has_value());

        char buf[16];
        auto r = co_await pair.server.read_some(buf);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::connection_reset);

        auto w = co_await pair.server.write(std::string_view("into the void"));
        REQUIRE_FALSE(w.has_value());
        CHECK(w.error() == std::errc::broken_pipe);
        char part[] = "gathered";
        const iovec iov[] = {{part, 4}, {part + 4, 4}};
        auto v = co_await pair.server.writev(iov);
        REQUIRE_FALSE(v.has_value());
        CHECK(v.error() == std::errc::broken_pipe);
        // The connection is gone; the address accept() saw is still known.
        auto peer = pair.server.peer();
        CHECK(peer.has_value());
    });
}

TEST_CASE("shutdown(SHUT_WR) half-closes: the peer reads to the end and can still answer") {
    with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](stream_pair& pair, int) -> task<void> {
        auto w = co_await pair.client.write(std::string_view("request"));
        REQUIRE(w.has_value());
        auto half = co_await pair.client.shutdown(SHUT_WR);
        REQUIRE(half.has_value());

        auto read_to_end = [](tcp_stream& s) -> task<std::string> {
            std::string all;
            char buf[3];  // several receives, then end of stream
            for (;;) {
                auto n = co_await s.read_some(buf);
                REQUIRE(n.has_value());
                if (*n == 0) co_return all;
                all.append(buf, *n);
            }
        };
        const auto request = co_await read_to_end(pair.server);
        CHECK(request == "request");
        auto answer = co_await pair.server.write(std::string_view("response"));
        REQUIRE(answer.has_value());
        auto closed = co_await pair.server.close();
        REQUIRE(closed.has_value());
        const auto response = co_await read_to_end(pair.client);
        CHECK(response == "response");

        auto bad = co_await pair.client.shutdown(12345);
        REQUIRE_FALSE(bad.has_value());
        CHECK(bad.error() == std::errc::invalid_argument);
    });
}

TEST_CASE("a read that never completes ends by with_timeout or a stop token, and the stream goes on") {
    with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](stream_pair& pair, int lfd) -> task<void> {
        char buf[8];
        const auto t0 = std::chrono::steady_clock::now();
        auto one = co_await pair.server.read_some(buf).with_timeout(20ms);
        CHECK(std::chrono::steady_clock::now() - t0 >= 20ms);
        REQUIRE_FALSE(one.has_value());
        CHECK(one.error() == std::errc::timed_out);

        auto whole = co_await with_timeout(pair.server.read(buf), 20ms);
        REQUIRE_FALSE(whole.has_value());
        CHECK(whole.error() == std::errc::timed_out);

        auto none = co_await accept(lfd).with_timeout(10ms);
        REQUIRE_FALSE(none.has_value());
        CHECK(none.error() == std::errc::timed_out);

        std::stop_source stop;
        // The token goes on the read itself: when_all gives the tasks it runs its own.
        auto reading = [](tcp_stream& s, std::span<char> b, std::stop_token t) -> task<result<void>> {
            co_return co_await s.read(b).with_stop_token(t);
        };
        auto stopping = [](std::stop_source& s) -> task<void> {
            (void)co_await io::nop();
            s.request_stop();
        };
        auto [stopped, done] = co_await when_all(reading(pair.server, buf, stop.get_token()), stopping(stop));
        (void)done;
        REQUIRE_FALSE(stopped.has_value());
        CHECK(stopped.error() == std::errc::operation_canceled);

        auto w = co_await pair.client.write(std::string_view("at last!"));
        REQUIRE(w.has_value());
        auto r = co_await pair.server.read(buf);
        REQUIRE(r.has_value());
        CHECK(std::string_view(buf, sizeof buf) == "at last!");
    });
}

TEST_CASE("close() closes through the ring, and a hundred connections leak no descriptor") {
    auto listener = listen_socket(endpoint::tcp("127.0.0.1", 0));
    auto body = [](int lfd) -> task<void> {
        const auto before = support::open_fd_count();
        for (int i = 0; i < 100; ++i) {
            auto pair = co_await connect_pair(lfd);
            auto w = co_await pair.client.write(std::string_view("x"));
            REQUIRE(w.has_value());
            char c;
            auto r = co_await pair.server.read_some(std::span(&c, 1));
            REQUIRE(r.has_value());
            const int client_fd = pair.client.native_handle();
            auto closed = co_await pair.client.close();
            REQUIRE(closed.has_value());
            CHECK_FALSE(pair.client.is_open());
            CHECK_FALSE(fd_is_open(client_fd));
            auto server_closed = co_await pair.server.close();
            REQUIRE(server_closed.has_value());
        }
        CHECK(support::open_fd_count() == before);

        tcp_stream empty;
        auto twice = co_await empty.close();  // nothing to close is EBADF, not a crash
        REQUIRE_FALSE(twice.has_value());
        CHECK(twice.error() == std::errc::bad_file_descriptor);
    };
    sync_wait(body(listener.get()));
}

TEST_CASE("set_nodelay, native_handle and release") {
    with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](stream_pair& pair, int) -> task<void> {
        auto on = pair.client.set_nodelay();
        REQUIRE(on.has_value());
        int value = 0;
        socklen_t len = sizeof value;
        REQUIRE(::getsockopt(pair.client.native_handle(), IPPROTO_TCP, TCP_NODELAY, &value, &len) == 0);
        CHECK(value != 0);
        auto off = pair.client.set_nodelay(false);
        REQUIRE(off.has_value());
        REQUIRE(::getsockopt(pair.client.native_handle(), IPPROTO_TCP, TCP_NODELAY, &value, &len) == 0);
        CHECK(value == 0);

        const int fd = pair.server.native_handle();
        unique_fd taken = pair.server.release();
        CHECK(taken.get() == fd);
        CHECK_FALSE(pair.server.is_open());
        CHECK(pair.server.native_handle() == -1);
        CHECK(fd_is_open(fd));
        tcp_stream again(std::move(taken));  // a plain fd (say, from multishot_accept) wraps back
        auto peer = again.peer();            // and asks the kernel who is there
        REQUIRE(peer.has_value());
        CHECK(*peer == pair.client.local().value());
        co_return;
    });

    auto sp = support::make_socketpair();
    tcp_stream unix_stream(std::move(sp[0]));
    auto unix_nodelay = unix_stream.set_nodelay();
    REQUIRE_FALSE(unix_nodelay.has_value());
    CHECK(unix_nodelay.error() == std::errc::operation_not_supported);
}

TEST_CASE("connect to a port nobody listens on is ECONNREFUSED, and to no address EAFNOSUPPORT") {
    endpoint gone;
    {
        auto l = listen_socket(endpoint::tcp("127.0.0.1", 0));
        gone = local_endpoint(l.get()).value();
    }  // closed: the port is free again
    auto body = [](endpoint to) -> task<void> {
        auto refused = co_await connect(to);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error() == std::errc::connection_refused);
        const endpoint none;
        auto nowhere = co_await connect(none);
        REQUIRE_FALSE(nowhere.has_value());
        CHECK(nowhere.error() == std::errc::address_family_not_supported);
    };
    sync_wait(body(gone));
}
