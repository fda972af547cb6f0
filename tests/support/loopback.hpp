// support: loopback — whether it has IPv6, and streams over it: a client connected to a
// listening socket with the server's end accepted.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <utility>

#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/net.hpp>

namespace support {

// Like liburing's tests, a test of IPv6 skips, saying why, where the machine has no ::1.
inline bool ipv6_loopback_available() {
    cluster::unique_fd fd(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return false;
    sockaddr_in6 addr{};
    addr.sin6_family = AF_INET6;
    addr.sin6_addr = in6addr_loopback;
    return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}
inline constexpr const char* no_ipv6 = "skipped: this machine has no IPv6 loopback (::1)";

// Both ends of one connection.
struct stream_pair {
    cluster::tcp_stream server;
    cluster::tcp_stream client;
};

// A client connected to `listen_fd`, and the server end, accepted.
inline cluster::task<stream_pair> connect_pair(int listen_fd) {
    auto ep = cluster::local_endpoint(listen_fd);
    REQUIRE(ep.has_value());
    auto client = co_await cluster::connect(*ep);  // the kernel completes it from the backlog
    REQUIRE(client.has_value());
    auto server = co_await cluster::accept(listen_fd);
    REQUIRE(server.has_value());
    stream_pair pair{std::move(*server), std::move(*client)};
    co_return std::move(pair);
}

// Runs body(listen_fd) on a fresh loop, with a socket listening on `where`.
template <class Body>
void with_listening(const cluster::endpoint& where, Body body) {
    auto listener = cluster::listen_socket(where);
    cluster::sync_wait(body(listener.get()));
}

// Runs body(pair, listen_fd) on a fresh loop, with a pair connected through a socket on `where`.
template <class Body>
void with_connected_pair(const cluster::endpoint& where, Body body) {
    with_listening(where, [&](int listen_fd) -> cluster::task<void> {
        auto pair = co_await connect_pair(listen_fd);
        co_await body(pair, listen_fd);
    });
}

}  // namespace support
