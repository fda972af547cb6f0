// cluster::net::inherited_socket: a listening socket this process was handed already open (by
// systemd, a previous binary, its parent), checked to be one, with what a socket beside it needs.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::net {

struct inherited_socket {
    unique_fd fd;
    endpoint local;                        // the address it is bound to
    bool reuse_port = false;               // SO_REUSEPORT: sockets beside it may bind the same address
    std::optional<bool> v6_only;           // an IPv6 socket's IPV6_V6ONLY
    std::chrono::seconds defer_accept{0};  // an IP socket's TCP_DEFER_ACCEPT, as the kernel rounded it
};

namespace detail {

inline result<int> socket_option(int fd, int level, int name) noexcept {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, level, name, &value, &len) != 0) return errno_code(errno);
    return value;
}

}  // namespace detail

// `fd`, made close-on-exec, if it is a stream socket listening on an IP or Unix-domain
// address. Otherwise `fd` is closed, and the error says what it is instead, `why` in words:
// EBADF (not open), ENOTSOCK (not a socket), EPROTOTYPE (a datagram or other non-stream
// socket), EINVAL (bound or not, it does not listen), EAFNOSUPPORT (another family).
inline result<inherited_socket> inspect_inherited(unique_fd fd, std::string& why) {
    why = "not an open descriptor";
    if (::fcntl(fd.get(), F_GETFD) < 0) return errno_code(EBADF);
    why = "not a socket";
    const auto type = detail::socket_option(fd.get(), SOL_SOCKET, SO_TYPE);
    if (!type) return type.error();
    why = "not a stream socket (a datagram socket cannot be listened on)";
    if (*type != SOCK_STREAM) return errno_code(EPROTOTYPE);
    why = "a stream socket that is not listening (call listen() on it first)";
    const auto listening = detail::socket_option(fd.get(), SOL_SOCKET, SO_ACCEPTCONN);
    if (!listening) return listening.error();
    if (*listening == 0) return errno_code(EINVAL);
    why = "not an IPv4, IPv6 or Unix-domain socket";
    auto local = local_endpoint(fd.get());
    if (!local) return local.error();
    why = "fcntl(FD_CLOEXEC)";
    if (::fcntl(fd.get(), F_SETFD, FD_CLOEXEC) != 0) return errno_code(errno);
    inherited_socket out{std::move(fd), *local, false, std::nullopt};
    if (out.local.is_ip()) {
        const auto reuse_port = detail::socket_option(out.fd.get(), SOL_SOCKET, SO_REUSEPORT);
        out.reuse_port = reuse_port && *reuse_port != 0;
        const auto defer_accept = detail::socket_option(out.fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT);
        if (defer_accept) out.defer_accept = std::chrono::seconds(*defer_accept);
    }
    if (out.local.family() == AF_INET6) {
        const auto v6_only = detail::socket_option(out.fd.get(), IPPROTO_IPV6, IPV6_V6ONLY);
        if (v6_only) out.v6_only = *v6_only != 0;
    }
    why.clear();
    return out;
}

}  // namespace cluster::net
