// cluster::net::udp_socket: a datagram socket on a UDP endpoint, with awaitable receive_from (a
// datagram longer than the buffer is an error, never cut silently) and send_to; and binding one.
#pragma once

#include <cluster/config.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/io/op.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/net/udp_endpoint.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::net {

struct udp_options {
    // SO_REUSEPORT: several sockets on one address and port, the kernel spreading datagrams
    // among them by a hash of their source and destination (schedule::reuseport).
    bool reuse_port = false;
    // IPV6_V6ONLY for IPv6 endpoints: true receives IPv6 only, false also IPv4 (as
    // ::ffff:a.b.c.d). Unset keeps the system's default, net.ipv6.bindv6only.
    std::optional<bool> v6_only = std::nullopt;
};

// What receive_from() brought: a whole datagram of `size` bytes, at the start of the buffer,
// and who sent it (where send_to() answers).
struct datagram {
    std::size_t size = 0;
    udp_endpoint from;
};

namespace detail {

// One recvmsg. MSG_TRUNC has the kernel answer the datagram's whole length, so one longer
// than the buffer is told from one that fits it exactly.
class receive_from_op : public io::basic_op<receive_from_op, result<datagram>> {
public:
    receive_from_op(int fd, std::span<std::byte> buf) noexcept : fd_(fd), buf_(buf) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        iov_ = {buf_.data(), buf_.size()};
        msg_ = {};
        msg_.msg_name = &from_;
        msg_.msg_namelen = sizeof from_;
        msg_.msg_iov = &iov_;
        msg_.msg_iovlen = 1;
        io_uring_prep_recvmsg(sqe, fd_, &msg_, MSG_TRUNC);
    }
    result<datagram> complete(int res) noexcept {
        if (res < 0) return errno_code(-res);
        if (static_cast<std::size_t>(res) > buf_.size() || (msg_.msg_flags & MSG_TRUNC) != 0)
            return make_error_code(errc::datagram_truncated);
        auto from = udp_endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&from_), msg_.msg_namelen);
        if (!from) return from.error();
        return datagram{static_cast<std::size_t>(res), *from};
    }

private:
    int fd_;
    std::span<std::byte> buf_;
    iovec iov_{};
    msghdr msg_{};
    sockaddr_storage from_{};
};

// One sendmsg to an address: a datagram goes whole or not at all.
class send_to_op : public io::basic_op<send_to_op, result<void>> {
public:
    send_to_op(int fd, std::span<const std::byte> buf, const udp_endpoint& to) noexcept : fd_(fd), buf_(buf), to_(to) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        iov_ = {const_cast<std::byte*>(buf_.data()), buf_.size()};
        msg_ = {};
        msg_.msg_name = const_cast<sockaddr*>(to_.ip().data());
        msg_.msg_namelen = to_.ip().size();
        msg_.msg_iov = &iov_;
        msg_.msg_iovlen = 1;
        io_uring_prep_sendmsg(sqe, fd_, &msg_, MSG_NOSIGNAL);
    }
    result<void> complete(int res) noexcept {
        if (res >= 0 && static_cast<std::size_t>(res) != buf_.size()) return errno_code(EMSGSIZE);
        return io::void_result(res);
    }

private:
    int fd_;
    std::span<const std::byte> buf_;
    udp_endpoint to_;
    iovec iov_{};
    msghdr msg_{};
};

// A udp_socket that a worker's listen() gave is a member of the primary's socket: the
// worker's leaving ends its receives, and closing it tells the primary, as a listener's does.
class udp_membership {
public:
    udp_membership(listener_host* host, std::uint32_t id) noexcept : host_(host), id_(id) {}

    // The worker is leaving: receives end with errc::listener_closed.
    void leave() noexcept { leaving_.request_stop(); }
    [[nodiscard]] std::stop_token leaving() const noexcept { return leaving_.get_token(); }

    // The socket closed (once): the primary no longer counts this worker among its members.
    void closed() noexcept {
        if (auto* host = std::exchange(host_, nullptr)) host->report_unlisten(id_);
    }

    // The worker is gone: nobody to tell.
    void detach() noexcept { host_ = nullptr; }

private:
    listener_host* host_;
    std::uint32_t id_;
    std::stop_source leaving_;
};

// A datagram socket bound to `at`; `step` names what failed.
CLUSTER_DECL result<unique_fd> open_udp(const endpoint& at, const udp_options& o, std::string& step);

}  // namespace detail

class udp_socket {
public:
    udp_socket() noexcept = default;
    // A bound datagram socket (IPv4 or IPv6) to receive and send on.
    explicit udp_socket(unique_fd socket) noexcept : fd_(std::move(socket)) {}
    // One that a worker's listen() gave.
    udp_socket(unique_fd socket, std::shared_ptr<detail::udp_membership> membership) noexcept
        : fd_(std::move(socket)), membership_(std::move(membership)) {}
    udp_socket(udp_socket&&) noexcept = default;
    CLUSTER_DECL udp_socket& operator=(udp_socket&& other) noexcept;
    ~udp_socket() { leave(); }

    // A socket bound to `at` (close-on-exec; port 0: the kernel picks, and local() says
    // which). The throwing form names the endpoint and the step that failed:
    // "cluster: cannot bind udp:127.0.0.1:53: bind: Permission denied".
    static CLUSTER_DECL result<udp_socket> try_bind(const udp_endpoint& at, const udp_options& o = {});
    static CLUSTER_DECL udp_socket bind(const udp_endpoint& at, const udp_options& o = {});

    [[nodiscard]] bool is_open() const noexcept { return fd_.valid(); }
    explicit operator bool() const noexcept { return is_open(); }
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }

    // The next datagram, whole, at the start of `buf`, and its sender. One longer than `buf`
    // is errc::datagram_truncated, never cut silently: its first bytes are in `buf`, the rest
    // is lost (a UDP datagram is smaller than 64 KiB: a buffer that size always fits). On a socket
    // from a worker's listen(), errc::listener_closed once the worker is leaving. Answers the
    // awaiting task's stop token (operation_canceled); io::with_timeout(task, d) bounds it.
    template <class R>
        requires io::byte_range<std::remove_cvref_t<R>>
    [[nodiscard]] io::task<result<datagram>> receive_from(R&& buf) {
        return receive_on(fd_.get(), membership_, io::as_writable_bytes(buf));
    }

    // Sends `buf` to `to` as one datagram: all of it, or an error (EMSGSIZE for more than a
    // datagram holds). Answers the awaiting task's stop token; takes .with_timeout(d) and
    // .with_stop_token(t).
    template <class R>
        requires io::byte_range<std::remove_cvref_t<R>>
    [[nodiscard]] detail::send_to_op send_to(const R& buf, const udp_endpoint& to) noexcept {
        return {fd_.get(), io::as_bytes(buf), to};
    }

    // Closes through the ring; the socket is empty from now on. A socket from a worker's
    // listen() tells the primary the worker left it. Receives still pending are not woken
    // by this: stop them first.
    [[nodiscard]] CLUSTER_DECL io::close_op close() noexcept;

    // The address bound: with port 0, the port the kernel chose.
    [[nodiscard]] CLUSTER_DECL result<udp_endpoint> local() const noexcept;

private:
    // Static, with its own copy of the membership: the socket may be moved while it waits.
    static CLUSTER_DECL io::task<result<datagram>> receive_on(int fd, std::shared_ptr<detail::udp_membership> m,
                                                              std::span<std::byte> buf);

    CLUSTER_DECL void leave() noexcept;

    unique_fd fd_;
    std::shared_ptr<detail::udp_membership> membership_;  // from a worker's listen(), if it is
};

}  // namespace cluster::net

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/net/impl/udp_socket.ipp>
#endif
