// cluster::http::close_gently: nginx's lingering close — a connection closed with the
// client's bytes unread would reset, and lose the answers the client has not read yet.
#pragma once

#include <cluster/io/task.hpp>
#include <cluster/net/tcp_stream.hpp>

#include <sys/socket.h>

#include <chrono>
#include <span>

namespace cluster::http {

inline constexpr std::chrono::seconds linger_time{2};

// So the server half-closes, then reads what is left until the client closes too, for
// linger_time at most.
inline io::task<void> close_gently(net::tcp_stream& s, std::span<char> scratch) {
    (void)co_await s.shutdown(SHUT_WR);
    const auto deadline = std::chrono::steady_clock::now() + linger_time;
    for (;;) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left.count() <= 0) co_return;
        auto n = co_await s.read_some(scratch).with_timeout(left);
        if (!n || *n == 0) co_return;
    }
}

}  // namespace cluster::http
