// cluster::net::tcp_stream: one connected stream socket (TCP or Unix-domain) with awaitable reads,
// writes, half-close and close; and accept() and connect(), which produce one.
#pragma once

#include <cluster/config.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <memory>
#include <span>
#include <type_traits>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/io/op.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/transfer.hpp>
#include <cluster/net/connection_lease.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::net {

// shutdown(2) as an io_uring op.
class shutdown_op : public io::basic_op<shutdown_op, result<void>> {
public:
    shutdown_op(int fd, int how) noexcept : fd_(fd), how_(how) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_shutdown(sqe, fd_, how_); }
    result<void> complete(int res) noexcept {
        // Kernels before 5.11 have no IORING_OP_SHUTDOWN and answer EINVAL. shutdown(2)
        // never blocks, so ask it directly; a `how` that really is invalid fails there too.
        if (res == -EINVAL) res = ::shutdown(fd_, how_) == 0 ? 0 : -errno;
        return io::void_result(res);
    }

private:
    int fd_;
    int how_;
};

class listener;

// A connection's socket taken out of its tcp_stream, and the lease that keeps its listener
// counting it: tcp_stream::lease().
struct leased_socket {
    unique_fd socket;
    connection_lease lease;
};

class tcp_stream {
public:
    tcp_stream() noexcept = default;
    explicit tcp_stream(unique_fd socket) noexcept : fd_(std::move(socket)) {}
    // `peer` is remembered: peer() still answers once the connection is gone.
    tcp_stream(unique_fd socket, const endpoint& peer) noexcept : fd_(std::move(socket)), peer_(peer) {}
    tcp_stream(tcp_stream&&) noexcept = default;
    CLUSTER_DECL tcp_stream& operator=(tcp_stream&& other) noexcept;
    CLUSTER_DECL ~tcp_stream();

    [[nodiscard]] bool is_open() const noexcept { return fd_.valid(); }
    explicit operator bool() const noexcept { return is_open(); }
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }
    // Gives the socket up without closing it (to pass it to another process, say). The listener
    // that accepted it counts it closed.
    [[nodiscard]] CLUSTER_DECL unique_fd release() noexcept;
    // Gives the socket up without closing it, to code that serves it on: the listener that
    // accepted it counts it open until the lease ends (cluster::asio::adopt hands both to Asio).
    [[nodiscard]] CLUSTER_DECL leased_socket lease() noexcept;

    // Every read and write below answers the awaiting task's stop token (ECANCELED).
    // The single ops (read_some, write_some, shutdown, close) also take .with_timeout(d)
    // and .with_stop_token(t); the tasks (read, write, writev) take
    // io::with_timeout(task, d), a deadline for the whole transfer, and
    // .with_stop_token(t). Peer gone: ECONNRESET or EPIPE as a value, never SIGPIPE.

    // One receive into a non-empty `buf`: the bytes read, at most its size. 0 means end of
    // stream: the peer has shut down its side or closed.
    template <class R>
        requires io::byte_range<std::remove_cvref_t<R>>
    [[nodiscard]] io::recv_op read_some(R&& buf) noexcept {
        return io::recv(fd_.get(), std::forward<R>(buf));
    }

    // One send: the bytes the kernel took, which may be fewer than `buf` holds.
    template <class R>
        requires io::byte_range<std::remove_cvref_t<R>>
    [[nodiscard]] io::send_op write_some(const R& buf) noexcept {
        return io::send(fd_.get(), buf);
    }

    // Fills all of `buf`, however many receives it takes. If the stream ends first the
    // result is cluster::errc::eof, and the bytes that did come are in `buf` (read_some
    // says how many, when that matters).
    template <class R>
        requires io::byte_range<std::remove_cvref_t<R>>
    [[nodiscard]] io::task<result<void>> read(R&& buf) {
        return io::recv_exact(fd_.get(), io::as_writable_bytes(buf));
    }

    // Sends all of `buf`, however many sends it takes.
    template <class R>
        requires io::byte_range<std::remove_cvref_t<R>>
    [[nodiscard]] io::task<result<void>> write(const R& buf) {
        return io::send_all(fd_.get(), io::as_bytes(buf));
    }

    // Sends every byte of every buffer in order, resuming mid-buffer after a partial send.
    // Any number of buffers: they go IOV_MAX at a time. `iov` itself is left as it was.
    [[nodiscard]] io::task<result<void>> writev(std::span<const iovec> iov) { return io::sendmsg_all(fd_.get(), iov); }

    // SHUT_WR sends end of stream and keeps reading; SHUT_RD, SHUT_RDWR as shutdown(2).
    [[nodiscard]] shutdown_op shutdown(int how) noexcept { return {fd_.get(), how}; }

    // Closes through the ring; the stream is empty from now on. Ops still pending on the
    // socket are not woken by this: stop them first.
    [[nodiscard]] CLUSTER_DECL io::close_op close() noexcept;

    // The other end, as accept() or connect() saw it, for as long as the stream is open;
    // else getpeername(), which fails with ENOTCONN once the connection is gone.
    [[nodiscard]] CLUSTER_DECL result<endpoint> peer() const noexcept;
    [[nodiscard]] result<endpoint> local() const noexcept { return local_endpoint(fd_.get()); }

    // TCP_NODELAY: small writes leave at once instead of waiting to coalesce (Nagle).
    // A Unix-domain stream has no such option: EOPNOTSUPP.
    CLUSTER_DECL result<void> set_nodelay(bool on = true) noexcept;

private:
    friend class listener;

    CLUSTER_DECL void untrack() noexcept;

    // A connection the primary handed over stays open in the primary until it reads the
    // worker's acknowledgement, so closing here would not end it: the peer would wait for
    // its FIN, and the primary would pay for the teardown. Shutting down ends it now.
    CLUSTER_DECL void end_shared() noexcept;

    unique_fd fd_;
    endpoint peer_;
    std::shared_ptr<detail::connection_tracker> tracker_;  // the listener that handed it out, if any
    bool shared_ = false;                                  // see end_shared()
};

class accept_stream_op : public io::basic_op<accept_stream_op, result<tcp_stream>> {
public:
    explicit accept_stream_op(int listen_fd) noexcept : fd_(listen_fd) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        peer_len_ = sizeof peer_;
        io_uring_prep_accept(sqe, fd_, reinterpret_cast<sockaddr*>(&peer_), &peer_len_, SOCK_CLOEXEC);
    }
    result<tcp_stream> complete(int res) noexcept {
        if (res < 0) return errno_code(-res);
        unique_fd socket(res);
        const auto peer = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer_), peer_len_);
        return tcp_stream(std::move(socket), peer ? *peer : endpoint{});
    }

private:
    int fd_;
    sockaddr_storage peer_{};
    socklen_t peer_len_ = 0;
};

// The next connection on a listening socket, with its peer's address (one io_uring
// accept; io::multishot_accept yields plain fds, which tcp_stream(unique_fd) wraps).
[[nodiscard]] inline accept_stream_op accept(int listen_fd) noexcept { return accept_stream_op{listen_fd}; }

// A stream connected to `to` (TCP or Unix-domain). It answers the awaiting task's stop
// token; io::with_timeout(connect(to), d) bounds it.
inline io::task<result<tcp_stream>> connect(endpoint to) {
    unique_fd socket(::socket(to.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!socket) co_return errno_code(errno);
    auto connected = co_await io::connect(socket.get(), to.data(), to.size());
    if (!connected) co_return connected.error();
    co_return tcp_stream(std::move(socket), to);
}

}  // namespace cluster::net

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/net/impl/tcp_stream.ipp>
#endif
