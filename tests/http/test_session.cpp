// cluster::http::server sessions over real loopback connections, a raw client on the other end:
// routes with their headers and bodies, keep-alive, pipelining (synchronous and coroutine
// handlers), 413 and 431, 408 for a head too slow, the upgrade hook, and which connections get
// TCP_NODELAY.
//
// Note for g++ 12: results of co_await are always named before they are tested.
#include <catch2/catch.hpp>

#include <cluster/http.hpp>
#include <cluster/io.hpp>
#include <cluster/net.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

using namespace cluster;
using namespace std::chrono_literals;

namespace {

// Answers "<method> <path> <query> <x-test header> <body>" to every request.
struct echo_handler {
    void operator()(const http::request& req, http::response& res) const {
        if (req.path() == "/missing") return res.send("404 Not Found", "text/plain", "");
        std::string text(llhttp_method_name(req.method));
        text.append(" ").append(req.path()).append(" ").append(req.query());
        text.append(" ").append(req.header("x-TEST").value_or("-")).append(" ").append(req.body);
        res.send("200 OK", "text/plain", text);
    }
};

// The same as a coroutine that suspends before it answers: pipelined answers keep their order.
struct coroutine_handler {
    task<void> operator()(const http::request& req, http::response& res) const {
        auto slept = co_await io::sleep_for(1ms);
        (void)slept;
        res.send("200 OK", "text/plain", req.path());
    }
};

// Switches to "echo" when asked, and then says what it got: the request's header, and the
// bytes the client sent right after its request.
struct upgrading_handler {
    void operator()(const http::request& req, http::response& res) const {
        if (req.path() == "/switch" && !res.switch_protocols("echo", "X-Switched: yes\r\n"))
            return res.send("400 Bad Request", "text/plain", "no upgrade asked\n");
        if (req.path() != "/switch") res.send("200 OK", "text/plain", "plain");
    }
    task<void> on_upgrade(http::upgraded u) const {
        std::string said = "header=" + std::string(u.request->header("Upgrade").value_or("")) +
                           " rest=" + std::string(u.rest.data(), u.rest.size());
        auto sent = co_await u.stream.write(said);
        REQUIRE(sent.has_value());
        (void)co_await u.stream.shutdown(SHUT_WR);
    }
};

// Answers plainly, or switches to "idle" and then holds the stream until the client closes.
struct holding_upgrade_handler {
    void operator()(const http::request& req, http::response& res) const {
        if (req.path() != "/switch" || !res.switch_protocols("idle")) res.send("200 OK", "text/plain", "plain");
    }
    task<void> on_upgrade(http::upgraded u) const {
        std::array<char, 64> buf;
        for (;;) {
            auto n = co_await u.stream.read_some(buf);
            if (!n || *n == 0) co_return;
        }
    }
};

template <class Handler>
task<void> accept_into(int listen_fd, http::server<Handler>& server) {
    for (;;) {
        auto stream = co_await accept(listen_fd);
        if (!stream) co_return;  // the scope's stop
        server.serve(std::move(*stream));
    }
}

// Runs client(endpoint) against a server of `handler`, then drains the server and joins it.
template <class Handler, class Client>
void with_server(Handler& handler, http::limits limits, Client client) {
    auto listener = listen_socket(endpoint::tcp("127.0.0.1", 0));
    auto where = local_endpoint(listener.get());
    REQUIRE(where.has_value());
    sync_wait([&]() -> task<void> {
        std::stop_source drain;
        http::server<Handler> server(handler, drain.get_token(), limits);
        scope acceptor;
        acceptor.spawn(accept_into(listener.get(), server));
        co_await client(*where);
        acceptor.request_stop();
        co_await acceptor.join();
        drain.request_stop();
        co_await server.join();
    }());
}

// How many whole responses `bytes` holds (each with a Content-Length, or a 101 alone).
std::size_t whole_responses(std::string_view bytes) {
    std::size_t n = 0;
    for (;;) {
        const auto end = bytes.find("\r\n\r\n");
        if (end == std::string_view::npos) return n;
        const auto head = bytes.substr(0, end);
        std::size_t length = 0;
        if (const auto at = head.find("Content-Length: "); at != std::string_view::npos)
            length = std::stoul(std::string(head.substr(at + 16)));
        if (bytes.size() < end + 4 + length) return n;
        ++n;
        bytes.remove_prefix(end + 4 + length);
    }
}

// Sends `request`, then reads until `responses` whole responses came, or the server closed.
task<std::string> exchange(tcp_stream& client, std::string_view request, std::size_t responses) {
    auto sent = co_await client.write(request);
    REQUIRE(sent.has_value());
    std::string got;
    std::array<char, 4096> buf;
    while (whole_responses(got) < responses) {
        auto n = co_await client.read_some(buf).with_timeout(10s);
        REQUIRE(n.has_value());
        if (*n == 0) break;
        got.append(buf.data(), *n);
    }
    co_return got;
}

// Everything until the server closes.
task<std::string> until_closed(tcp_stream& client) {
    std::string got;
    std::array<char, 4096> buf;
    for (;;) {
        auto n = co_await client.read_some(buf).with_timeout(10s);
        if (!n || *n == 0) co_return got;
        got.append(buf.data(), *n);
    }
}

// TCP_NODELAY on the server's end of `client`: the descriptor of this process whose peer is
// the client's own address.
std::optional<int> server_end_nodelay(const tcp_stream& client) {
    sockaddr_in mine{};
    socklen_t len = sizeof mine;
    REQUIRE(::getsockname(client.native_handle(), reinterpret_cast<sockaddr*>(&mine), &len) == 0);
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        const int fd = std::stoi(entry.path().filename().string());
        sockaddr_in peer{};
        socklen_t peer_len = sizeof peer;
        if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0 || peer.sin_family != AF_INET ||
            peer.sin_port != mine.sin_port || peer.sin_addr.s_addr != mine.sin_addr.s_addr)
            continue;
        int value = -1;
        socklen_t value_len = sizeof value;
        REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &value_len) == 0);
        return value;
    }
    return std::nullopt;
}

task<tcp_stream> connected(const endpoint& where) {
    auto c = co_await connect(where);
    REQUIRE(c.has_value());
    co_return std::move(*c);
}

}  // namespace

TEST_CASE("routes: the handler sees method, path, query, headers whatever their case, and the body") {
    echo_handler h;
    with_server(h, {}, [](const endpoint& where) -> task<void> {
        auto c = co_await connected(where);
        auto got = co_await exchange(c, "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: t\r\nX-Test: v1\r\n\r\n", 1);
        CHECK(got.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(got.find("\r\n\r\nGET /a/b x=1&y=2 v1 ") != std::string::npos);
        auto posted = co_await exchange(c, "POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 1);
        CHECK(posted.find("\r\n\r\nPOST /p  - hello") != std::string::npos);
        auto chunked = co_await exchange(
            c, "PUT /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 1);
        CHECK(chunked.find("\r\n\r\nPUT /c  - abcde") != std::string::npos);
        auto missing = co_await exchange(c, "GET /missing HTTP/1.1\r\nHost: t\r\n\r\n", 1);
        CHECK(missing.find("HTTP/1.1 404 Not Found\r\n") == 0);
    });
}

TEST_CASE("keep-alive: requests one after another on one connection, and HTTP/1.0 and Connection: close end it") {
    echo_handler h;
    with_server(h, {}, [](const endpoint& where) -> task<void> {
        auto c = co_await connected(where);
        for (int i = 0; i < 3; ++i) {
            auto got = co_await exchange(c, "GET /k HTTP/1.1\r\nHost: t\r\n\r\n", 1);
            CHECK(got.find("Connection: keep-alive\r\n") != std::string::npos);
        }
        auto last = co_await exchange(c, "GET /k HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", 1);
        CHECK(last.find("Connection: close\r\n") != std::string::npos);
        auto rest = co_await until_closed(c);
        CHECK(rest.empty());
        auto old = co_await connected(where);
        auto sent = co_await old.write(std::string_view("GET /old HTTP/1.0\r\n\r\n"));
        REQUIRE(sent.has_value());
        auto got = co_await until_closed(old);
        CHECK(whole_responses(got) == 1);
        CHECK(got.find("Connection: close\r\n") != std::string::npos);
    });
}

TEST_CASE("pipelining: requests sent in one write are answered in order, by a coroutine handler too") {
    const std::string three = "GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n"
                              "GET /3 HTTP/1.1\r\nHost: t\r\n\r\n";
    echo_handler sync_handler;
    with_server(sync_handler, {}, [&](const endpoint& where) -> task<void> {
        auto c = co_await connected(where);
        auto got = co_await exchange(c, three, 3);
        CHECK(got.find("GET /1") < got.find("GET /2"));
        CHECK(got.find("GET /2") < got.find("GET /3"));
    });
    coroutine_handler co_handler;
    with_server(co_handler, {}, [&](const endpoint& where) -> task<void> {
        auto c = co_await connected(where);
        auto got = co_await exchange(c, three, 3);
        CHECK(whole_responses(got) == 3);
        CHECK(got.find("\r\n\r\n/1") < got.find("\r\n\r\n/2"));
        CHECK(got.find("\r\n\r\n/2") < got.find("\r\n\r\n/3"));
    });
}

TEST_CASE("limits: a head past max_header_bytes gets 431, a body past max_body_bytes 413, and the connection closes") {
    echo_handler h;
    http::limits l;
    l.max_header_bytes = 256;
    l.max_body_bytes = 16;
    with_server(h, l, [](const endpoint& where) -> task<void> {
        auto big_head = co_await connected(where);
        auto sent = co_await big_head.write("GET / HTTP/1.1\r\nX-Big: " + std::string(300, 'a') + "\r\n\r\n");
        REQUIRE(sent.has_value());
        auto got = co_await until_closed(big_head);
        CHECK(got.find("HTTP/1.1 431 ") == 0);

        auto declared = co_await connected(where);
        auto sent2 = co_await declared.write(std::string_view("POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n"));
        REQUIRE(sent2.has_value());
        auto got2 = co_await until_closed(declared);
        CHECK(got2.find("HTTP/1.1 413 ") == 0);

        auto chunked = co_await connected(where);
        auto sent3 = co_await chunked.write(std::string_view(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\nx\r\n"));
        REQUIRE(sent3.has_value());
        auto got3 = co_await until_closed(chunked);
        CHECK(got3.find("HTTP/1.1 413 ") == 0);

        auto at_limit = co_await connected(where);
        auto got4 = co_await exchange(at_limit, "POST / HTTP/1.1\r\nContent-Length: 16\r\n\r\n0123456789abcdef", 1);
        CHECK(got4.find("HTTP/1.1 200 OK") == 0);
    });
}

TEST_CASE("timeouts: a head not whole within header_timeout gets 408, and the connection closes") {
    echo_handler h;
    http::limits l;
    l.header_timeout = 300ms;
    with_server(h, l, [](const endpoint& where) -> task<void> {
        auto c = co_await connected(where);
        auto sent = co_await c.write(std::string_view("GET / HTTP/1.1\r\nHost: t\r\n"));  // never ends
        REQUIRE(sent.has_value());
        auto got = co_await until_closed(c);
        CHECK(got.find("HTTP/1.1 408 Request Timeout\r\n") == 0);
        CHECK(got.find("Connection: close\r\n") != std::string::npos);
    });
}

TEST_CASE("upgrade: on_upgrade takes the stream after 101, with the request and the bytes read past it") {
    upgrading_handler h;
    with_server(h, {}, [](const endpoint& where) -> task<void> {
        auto c = co_await connected(where);
        auto sent = co_await c.write(std::string_view(
            "GET /switch HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nFIRST BYTES"));
        REQUIRE(sent.has_value());
        auto got = co_await until_closed(c);
        CHECK(got.find("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Switched: "
                       "yes\r\n\r\n") == 0);
        CHECK(got.find("\r\n\r\nheader=echo rest=FIRST BYTES") != std::string::npos);

        // Not asked for: switch_protocols refuses, and the handler answers as it will.
        auto plain = co_await connected(where);
        auto got2 = co_await exchange(plain, "GET /switch HTTP/1.1\r\nHost: t\r\n\r\n", 1);
        CHECK(got2.find("HTTP/1.1 400 ") == 0);
        // Asked for and not taken: answered, then the connection closes.
        auto refused = co_await connected(where);
        auto sent3 = co_await refused.write(
            std::string_view("GET /other HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"));
        REQUIRE(sent3.has_value());
        auto got3 = co_await until_closed(refused);
        CHECK(got3.find("HTTP/1.1 200 OK") == 0);
        CHECK(got3.find("Connection: close\r\n") != std::string::npos);
    });
}

// Nagle's algorithm only holds back data behind unacknowledged data: the server pays
// TCP_NODELAY's system call for a connection that outlives an answer, as nginx does.
TEST_CASE("TCP_NODELAY: set on a connection kept alive or upgraded, not on one closed after its answer") {
    holding_upgrade_handler h;
    with_server(h, {}, [](const endpoint& where) -> task<void> {
        auto kept = co_await connected(where);
        auto answered = co_await exchange(kept, "GET /k HTTP/1.1\r\nHost: t\r\n\r\n", 1);
        CHECK(answered.find("HTTP/1.1 200 OK\r\n") == 0);
        CHECK(server_end_nodelay(kept) == std::optional<int>(1));

        // Bytes after the request leave the server lingering, half-closed, until this end closes.
        auto closed = co_await connected(where);
        auto sent =
            co_await closed.write(std::string_view("GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nMORE"));
        REQUIRE(sent.has_value());
        auto last = co_await until_closed(closed);
        CHECK(last.find("Connection: close\r\n") != std::string::npos);
        CHECK(server_end_nodelay(closed) == std::optional<int>(0));

        auto upgraded = co_await connected(where);
        auto switched = co_await exchange(
            upgraded, "GET /switch HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: idle\r\n\r\n", 1);
        CHECK(switched.find("HTTP/1.1 101 Switching Protocols\r\n") == 0);
        CHECK(server_end_nodelay(upgraded) == std::optional<int>(1));
    });
}
