// The awaitable io_uring operations: read, write, readv, writev, recv, send, sendmsg and
// recvmsg (with SCM_RIGHTS), accept, connect, poll, sleep, close, nop. Each yields a result.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <span>
#include <vector>

#include <cluster/io/op.hpp>
#include <cluster/io/scm_rights.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::io {

// Any contiguous range of trivially copyable elements is a buffer.
template <class R>
concept byte_range = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                     std::is_trivially_copyable_v<std::ranges::range_value_t<R>>;

template <byte_range R>
std::span<const std::byte> as_bytes(const R& r) noexcept {
    return std::as_bytes(std::span(std::ranges::data(r), std::ranges::size(r)));
}
template <byte_range R>
    requires(!std::is_const_v<std::remove_reference_t<std::ranges::range_reference_t<R>>>)
std::span<std::byte> as_writable_bytes(R&& r) noexcept {
    return std::as_writable_bytes(std::span(std::ranges::data(r), std::ranges::size(r)));
}

inline constexpr std::uint64_t current_position = static_cast<std::uint64_t>(-1);

class read_op : public basic_op<read_op, result<std::size_t>> {
public:
    read_op(int fd, std::span<std::byte> buf, std::uint64_t offset) noexcept : fd_(fd), buf_(buf), offset_(offset) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_read(sqe, fd_, buf_.data(), static_cast<unsigned>(std::min<std::size_t>(buf_.size(), 1u << 31)),
                           offset_);
    }
    result<std::size_t> complete(int res) noexcept { return size_result(res); }

private:
    int fd_;
    std::span<std::byte> buf_;
    std::uint64_t offset_;
};

class write_op : public basic_op<write_op, result<std::size_t>> {
public:
    write_op(int fd, std::span<const std::byte> buf, std::uint64_t offset) noexcept
        : fd_(fd), buf_(buf), offset_(offset) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_write(sqe, fd_, buf_.data(), static_cast<unsigned>(std::min<std::size_t>(buf_.size(), 1u << 31)),
                            offset_);
    }
    result<std::size_t> complete(int res) noexcept { return size_result(res); }

private:
    int fd_;
    std::span<const std::byte> buf_;
    std::uint64_t offset_;
};

// readv and writev: the iovec array must outlive the op (the kernel may read it late).
enum class direction { read, write };

template <direction D>
class vectored_op : public basic_op<vectored_op<D>, result<std::size_t>> {
public:
    vectored_op(int fd, std::span<const iovec> iov, std::uint64_t offset) noexcept
        : fd_(fd), iov_(iov), offset_(offset) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        const auto n = static_cast<unsigned>(iov_.size());
        if constexpr (D == direction::read)
            io_uring_prep_readv(sqe, fd_, iov_.data(), n, offset_);
        else
            io_uring_prep_writev(sqe, fd_, iov_.data(), n, offset_);
    }
    result<std::size_t> complete(int res) noexcept { return size_result(res); }

private:
    int fd_;
    std::span<const iovec> iov_;
    std::uint64_t offset_;
};

using readv_op = vectored_op<direction::read>;
using writev_op = vectored_op<direction::write>;

class recv_op : public basic_op<recv_op, result<std::size_t>> {
public:
    recv_op(int fd, std::span<std::byte> buf, int flags) noexcept : fd_(fd), buf_(buf), flags_(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_recv(sqe, fd_, buf_.data(), buf_.size(), flags_); }
    result<std::size_t> complete(int res) noexcept { return size_result(res); }

private:
    int fd_;
    std::span<std::byte> buf_;
    int flags_;
};

class send_op : public basic_op<send_op, result<std::size_t>> {
public:
    send_op(int fd, std::span<const std::byte> buf, int flags) noexcept : fd_(fd), buf_(buf), flags_(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_send(sqe, fd_, buf_.data(), buf_.size(), flags_); }
    result<std::size_t> complete(int res) noexcept { return size_result(res); }

private:
    int fd_;
    std::span<const std::byte> buf_;
    int flags_;
};

// sendmsg with file descriptors attached as SCM_RIGHTS; the fds stay open here (the
// kernel duplicates them into the receiver).
class sendmsg_op : public basic_op<sendmsg_op, result<std::size_t>> {
public:
    sendmsg_op(int fd, std::span<const iovec> iov, std::span<const int> fds, int flags)
        : fd_(fd), iov_(iov), flags_(flags) {
        msghdr packed{};
        attach_fds(packed, control_, fds);
    }
    void prepare(io_uring_sqe* sqe) noexcept {
        msg_ = {};
        msg_.msg_iov = const_cast<iovec*>(iov_.data());
        msg_.msg_iovlen = iov_.size();
        if (!control_.empty()) {
            msg_.msg_control = control_.data();
            msg_.msg_controllen = control_.size();
        }
        io_uring_prep_sendmsg(sqe, fd_, &msg_, static_cast<unsigned>(flags_));
    }
    result<std::size_t> complete(int res) noexcept { return size_result(res); }

private:
    int fd_;
    std::span<const iovec> iov_;
    int flags_;
    std::vector<std::byte> control_;
    msghdr msg_{};
};

// What recvmsg brings: the bytes read, the fds that came with them (open, close-on-exec),
// and whether the kernel had to drop fds or control data that did not fit.
struct received {
    std::size_t bytes = 0;
    std::vector<unique_fd> fds;
    bool control_truncated = false;
};

// The kernel's SCM_MAX_FD: no more fds than this travel with one message.
inline constexpr std::size_t max_fds_per_message = 253;

class recvmsg_op : public basic_op<recvmsg_op, result<received>> {
public:
    recvmsg_op(int fd, std::span<const iovec> iov, int flags) noexcept : fd_(fd), iov_(iov), flags_(flags) {}
    recvmsg_op(recvmsg_op&&) noexcept = default;
    void prepare(io_uring_sqe* sqe) noexcept {
        msg_ = {};
        msg_.msg_iov = const_cast<iovec*>(iov_.data());
        msg_.msg_iovlen = iov_.size();
        msg_.msg_control = control_.data();
        msg_.msg_controllen = control_.size();
        io_uring_prep_recvmsg(sqe, fd_, &msg_, static_cast<unsigned>(flags_) | MSG_CMSG_CLOEXEC);
    }
    result<received> complete(int res) {
        // Whatever arrived is owned before anything else: fds must not leak on error.
        received r{0, take_fds(msg_), false};
        if (res < 0) return errno_code(-res);
        r.bytes = static_cast<std::size_t>(res);
        r.control_truncated = (msg_.msg_flags & MSG_CTRUNC) != 0;
        return r;
    }

private:
    int fd_;
    std::span<const iovec> iov_;
    int flags_;
    msghdr msg_{};
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(int) * max_fds_per_message)> control_{};
};

class accept_op : public basic_op<accept_op, result<unique_fd>> {
public:
    accept_op(int fd, sockaddr* addr, socklen_t* len) noexcept : fd_(fd), addr_(addr), len_(len) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_accept(sqe, fd_, addr_, len_, SOCK_CLOEXEC); }
    result<unique_fd> complete(int res) noexcept {
        if (res < 0) return errno_code(-res);
        return unique_fd(res);
    }

private:
    int fd_;
    sockaddr* addr_;
    socklen_t* len_;
};

class connect_op : public basic_op<connect_op, result<void>> {
public:
    connect_op(int fd, const sockaddr* addr, socklen_t len) noexcept : fd_(fd), len_(len) {
        std::memcpy(&addr_, addr, std::min<std::size_t>(len, sizeof addr_));
    }
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_connect(sqe, fd_, reinterpret_cast<const sockaddr*>(&addr_), len_);
    }
    result<void> complete(int res) noexcept { return void_result(res); }

private:
    int fd_;
    sockaddr_storage addr_{};
    socklen_t len_;
};

class poll_op : public basic_op<poll_op, result<short>> {
public:
    poll_op(int fd, short events) noexcept : fd_(fd), events_(events) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_poll_add(sqe, fd_, static_cast<unsigned>(events_)); }
    result<short> complete(int res) noexcept {
        if (res < 0) return errno_code(-res);
        return static_cast<short>(res);
    }

private:
    int fd_;
    short events_;
};

// A timer: success when it expires (the kernel's ETIME), ECANCELED when cancelled.
class sleep_op : public basic_op<sleep_op, result<void>> {
public:
    sleep_op(__kernel_timespec ts, unsigned flags) noexcept : ts_(ts), flags_(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_timeout(sqe, &ts_, 0, flags_); }
    result<void> complete(int res) noexcept { return void_result(res == -ETIME ? 0 : res); }

private:
    __kernel_timespec ts_;
    unsigned flags_;
};

// Owns the fd until submission, so an op that is never awaited still closes it.
class close_op : public basic_op<close_op, result<void>> {
public:
    explicit close_op(unique_fd fd) noexcept : fd_(std::move(fd)) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_close(sqe, fd_.release()); }
    result<void> complete(int res) noexcept { return void_result(res); }

private:
    unique_fd fd_;
};

class nop_op : public basic_op<nop_op, result<void>> {
public:
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_nop(sqe); }
    result<void> complete(int res) noexcept { return void_result(res); }
};

// The spellings users write: co_await io::read(fd, buffer), and so on.

template <class R>
    requires byte_range<std::remove_cvref_t<R>>
read_op read(int fd, R&& buf, std::uint64_t offset = current_position) noexcept {
    return {fd, as_writable_bytes(buf), offset};
}
template <class R>
    requires byte_range<std::remove_cvref_t<R>>
write_op write(int fd, const R& buf, std::uint64_t offset = current_position) noexcept {
    return {fd, as_bytes(buf), offset};
}
inline readv_op readv(int fd, std::span<const iovec> iov, std::uint64_t offset = current_position) noexcept {
    return {fd, iov, offset};
}
inline writev_op writev(int fd, std::span<const iovec> iov, std::uint64_t offset = current_position) noexcept {
    return {fd, iov, offset};
}
template <class R>
    requires byte_range<std::remove_cvref_t<R>>
recv_op recv(int fd, R&& buf, int flags = 0) noexcept {
    return {fd, as_writable_bytes(buf), flags};
}
// MSG_NOSIGNAL by default: a closed peer is an EPIPE result, not a process-killing SIGPIPE.
template <class R>
    requires byte_range<std::remove_cvref_t<R>>
send_op send(int fd, const R& buf, int flags = MSG_NOSIGNAL) noexcept {
    return {fd, as_bytes(buf), flags};
}
inline sendmsg_op sendmsg(int fd, std::span<const iovec> iov, std::span<const int> fds = {}, int flags = MSG_NOSIGNAL) {
    return {fd, iov, fds, flags};
}
inline recvmsg_op recvmsg(int fd, std::span<const iovec> iov, int flags = 0) noexcept { return {fd, iov, flags}; }
inline accept_op accept(int fd, sockaddr* addr = nullptr, socklen_t* len = nullptr) noexcept { return {fd, addr, len}; }
inline connect_op connect(int fd, const sockaddr* addr, socklen_t len) noexcept { return {fd, addr, len}; }
inline poll_op poll(int fd, short events) noexcept { return {fd, events}; }
template <class Rep, class Period>
sleep_op sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
    return {to_timespec(d), 0};
}
// Absolute deadline on CLOCK_MONOTONIC, the clock behind std::chrono::steady_clock.
template <class Duration>
sleep_op sleep_until(std::chrono::time_point<std::chrono::steady_clock, Duration> t) noexcept {
    return {to_timespec(t.time_since_epoch()), IORING_TIMEOUT_ABS};
}
inline close_op close(unique_fd fd) noexcept { return close_op{std::move(fd)}; }
inline nop_op nop() noexcept { return {}; }

}  // namespace cluster::io
