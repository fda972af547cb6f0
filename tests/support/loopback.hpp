// support: streams over loopback — a listening socket for a test's body, and a client
// connected through it with the server's end accepted.
#pragma once

#include <utility>

#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/net.hpp>

namespace support {

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
