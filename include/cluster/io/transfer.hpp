// cluster::io::read_exact, write_all, recv_exact, send_all, sendmsg_all: the loops that go
// on until a whole buffer has moved, over files and pipes (read, write) or sockets (recv, send).
#pragma once

#include <limits.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/result.hpp>

namespace cluster::io {

namespace detail {

// Calls step(the rest of buf) until none is left. A step that moves nothing ends it with
// errc::eof: a read at end of stream, or a write whose other end is gone.
template <class Byte, class Step>
task<result<void>> move_all(std::span<Byte> buf, Step step) {
    while (!buf.empty()) {
        auto n = co_await step(buf);
        if (!n) co_return n.error();
        if (*n == 0) co_return make_error_code(errc::eof);
        buf = buf.subspan(*n);
    }
    co_return result<void>{};
}

// Drops the first `n` bytes from the front of `iov`: whole buffers (and empty ones), then
// the start of a partly sent one.
inline std::span<iovec> advance_iovecs(std::span<iovec> iov, std::size_t n) noexcept {
    while (!iov.empty() && n >= iov.front().iov_len) {
        n -= iov.front().iov_len;
        iov = iov.subspan(1);
    }
    if (n > 0) {
        iov.front().iov_base = static_cast<std::byte*>(iov.front().iov_base) + n;
        iov.front().iov_len -= n;
    }
    return iov;
}

}  // namespace detail

// Fills all of `buf` with read(2). If the stream ends first: errc::eof, and the bytes that
// came are in `buf`.
inline task<result<void>> read_exact(int fd, std::span<std::byte> buf) {
    return detail::move_all(buf, [fd](std::span<std::byte> rest) { return io::read(fd, rest); });
}

// All of `buf` with write(2): for pipes, files and terminals.
inline task<result<void>> write_all(int fd, std::span<const std::byte> buf) {
    return detail::move_all(buf, [fd](std::span<const std::byte> rest) { return io::write(fd, rest); });
}

// read_exact() with recv(2), for sockets.
inline task<result<void>> recv_exact(int fd, std::span<std::byte> buf) {
    return detail::move_all(buf, [fd](std::span<std::byte> rest) { return io::recv(fd, rest); });
}

// All of `buf` with send(2): a peer gone is EPIPE as a value, never SIGPIPE.
inline task<result<void>> send_all(int fd, std::span<const std::byte> buf) {
    return detail::move_all(buf, [fd](std::span<const std::byte> rest) { return io::send(fd, rest); });
}

// Every byte of every buffer in order, with sendmsg (only it takes MSG_NOSIGNAL), IOV_MAX
// buffers at a time, resuming mid-buffer after a partial send. `iov` is left as it was.
inline task<result<void>> sendmsg_all(int fd, std::span<const iovec> iov) {
    std::vector<iovec> copy(iov.begin(), iov.end());
    auto pending = detail::advance_iovecs(copy, 0);
    while (!pending.empty()) {
        const auto batch = pending.first(std::min<std::size_t>(pending.size(), IOV_MAX));
        auto n = co_await io::sendmsg(fd, batch);
        if (!n) co_return n.error();
        pending = detail::advance_iovecs(pending, *n);
    }
    co_return result<void>{};
}

}  // namespace cluster::io
