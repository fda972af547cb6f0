// cluster::net::udp_socket's definitions: binding, receiving until the worker leaves, closing.
// Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/net/udp_socket.hpp>

#include <cerrno>
#include <system_error>

#include <cluster/net/listen_socket.hpp>

namespace cluster::net {

CLUSTER_DECL result<unique_fd> detail::open_udp(const endpoint& at, const udp_options& o, std::string& step) {
    step = "socket";
    if (!at.is_ip()) return std::make_error_code(std::errc::address_family_not_supported);
    unique_fd fd(::socket(at.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return errno_code(errno);
    result<void> set;
    if (o.reuse_port) {
        step = "setsockopt(SO_REUSEPORT)";
        set = set_socket_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1);
    }
    if (set && at.family() == AF_INET6 && o.v6_only) {
        step = "setsockopt(IPV6_V6ONLY)";
        set = set_socket_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, *o.v6_only ? 1 : 0);
    }
    if (!set) return set.error();
    step = "bind";
    if (::bind(fd.get(), at.data(), at.size()) != 0) return errno_code(errno);
    return fd;
}

CLUSTER_DECL udp_socket& udp_socket::operator=(udp_socket&& other) noexcept {
    if (this != &other) {
        leave();
        fd_ = std::move(other.fd_);
        membership_ = std::move(other.membership_);
    }
    return *this;
}

CLUSTER_DECL result<udp_socket> udp_socket::try_bind(const udp_endpoint& at, const udp_options& o) {
    std::string step;
    auto fd = detail::open_udp(at.ip(), o, step);
    if (!fd) return fd.error();
    return udp_socket(std::move(*fd));
}

CLUSTER_DECL udp_socket udp_socket::bind(const udp_endpoint& at, const udp_options& o) {
    std::string step;
    auto fd = detail::open_udp(at.ip(), o, step);
    if (!fd) throw std::system_error(fd.error(), "cluster: cannot bind " + at.to_string() + ": " + step);
    return udp_socket(std::move(*fd));
}

CLUSTER_DECL io::close_op udp_socket::close() noexcept {
    leave();
    return io::close(std::move(fd_));
}

CLUSTER_DECL result<udp_endpoint> udp_socket::local() const noexcept {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) return errno_code(errno);
    return udp_endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&addr), len);
}

CLUSTER_DECL io::task<result<datagram>> udp_socket::receive_on(int fd, std::shared_ptr<detail::udp_membership> m,
                                                               std::span<std::byte> buf) {
    if (!m) co_return co_await detail::receive_from_op(fd, buf);
    if (m->leaving().stop_requested()) co_return make_error_code(errc::listener_closed);
    auto mine = co_await io::current_stop_token();
    std::stop_source either;
    std::stop_callback on_mine(mine, detail::stop_with{&either});
    std::stop_callback on_leaving(m->leaving(), detail::stop_with{&either});
    auto got = co_await detail::receive_from_op(fd, buf).with_stop_token(either.get_token());
    if (!got && !mine.stop_requested() && m->leaving().stop_requested()) co_return make_error_code(errc::listener_closed);
    co_return got;
}

CLUSTER_DECL void udp_socket::leave() noexcept {
    if (membership_) std::exchange(membership_, nullptr)->closed();
}

}  // namespace cluster::net
