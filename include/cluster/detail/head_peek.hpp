// cluster::detail::head_peek: the primary's look at the first bytes of a connection before it
// hands it on — peeked, never consumed, bounded in bytes and in time — and the sticky key in them.
#pragma once

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <cluster/detail/request_head.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/sticky_key.hpp>

namespace cluster::detail {

struct peeked_head {
    std::string bytes;  // the start of the connection, still unread in its socket
    std::string key;    // the sticky key's value in them; empty when absent
};

// Readiness on `fd` from now on means at least `n` bytes unread (or its end): a peek that saw
// a partial head waits for more than it saw, not for what is already there.
inline bool readable_from(int fd, std::size_t n) noexcept {
    const int bytes = static_cast<int>(n);
    return ::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &bytes, sizeof bytes) == 0;
}

// The first bytes of the stream socket `fd`, until they show `key` (or show it is not there,
// or that they are no HTTP request), `key.peek_bytes` of them came, the client ended, or
// `key.peek_timeout` passed; whatever happens, what came stays in the socket for its worker.
inline io::task<peeked_head> peek_head(int fd, net::sticky_key key) {
    using clock = std::chrono::steady_clock;
    const auto deadline = clock::now() + key.peek_timeout;
    std::string buf(key.peek_bytes, '\0');
    peeked_head out;
    std::size_t have = 0;
    bool raised = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock::now());
        if (left.count() <= 0) break;
        if (have > 0) {
            raised = readable_from(fd, have + 1);
            if (!raised) break;
            auto more = co_await io::poll(fd, POLLIN).with_timeout(left);
            if (!more) break;
        }
        auto n = co_await io::recv(fd, std::span(buf.data(), buf.size()), MSG_PEEK).with_timeout(left);
        if (!n || *n <= have) break;  // failed, timed out, or the client ended: nothing more comes
        have = *n;
        const auto found = find_key(std::string_view(buf.data(), have), key);
        if (found.state == head_scan::found) out.key = found.value;
        if (found.state != head_scan::incomplete || have == buf.size()) break;
    }
    if (raised) readable_from(fd, 1);  // the worker's reads and polls as the kernel's default has them
    buf.resize(have);
    out.bytes = std::move(buf);
    co_return out;
}

}  // namespace cluster::detail
