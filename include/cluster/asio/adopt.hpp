// cluster::asio::adopt: a cluster connection (net::tcp_stream) made an Asio socket of any stream
// protocol, once checked to be a connected stream of that protocol's family, its count kept.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include <cluster/asio/connection.hpp>
#include <cluster/error.hpp>
#include <cluster/net/tcp_stream.hpp>
#include <cluster/result.hpp>

namespace cluster::asio {

namespace detail {

// Whether a socket of `family` can be a Protocol's: ip::tcp takes IPv4 and IPv6,
// local::stream_protocol Unix-domain sockets.
template <class Protocol>
bool family_fits(int family) noexcept {
    if constexpr (requires {
                      Protocol::v4();
                      Protocol::v6();
                  })
        return family == Protocol::v4().family() || family == Protocol::v6().family();
    else
        return family == Protocol().family();
}

inline std::error_code socket_option(int fd, int name, int& value) noexcept {
    socklen_t len = sizeof value;
    return ::getsockopt(fd, SOL_SOCKET, name, &value, &len) == 0 ? std::error_code{} : errno_code(errno);
}

// The Protocol `fd` is a connected stream socket of, or why it is none; `what` says which check failed.
template <class Protocol>
result<Protocol> connected_stream(int fd, std::string& what) {
    if (fd < 0) {
        what = "the stream holds no socket (adopted, released or closed before)";
        return errno_code(EBADF);
    }
    int type = 0;
    if (auto e = socket_option(fd, SO_TYPE, type)) {
        what = "not a socket";
        return e;
    }
    if (type != SOCK_STREAM) {
        what = "not a stream socket";
        return errno_code(EPROTOTYPE);
    }
    int listening = 0;
    if (auto e = socket_option(fd, SO_ACCEPTCONN, listening)) return e;
    if (listening) {
        what = "a listening socket, not a connection";
        return errno_code(EINVAL);
    }
    typename Protocol::endpoint local;
    socklen_t len = static_cast<socklen_t>(local.capacity());
    if (::getsockname(fd, local.data(), &len) != 0) return errno_code(errno);
    local.resize(len);
    if (!family_fits<Protocol>(local.data()->sa_family)) {
        what = "a socket of another address family than the Asio socket's protocol";
        return errno_code(EAFNOSUPPORT);
    }
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) {
        what = "not connected";
        return errno_code(errno);
    }
    return local.protocol();
}

// Protocol for a socket of `family`, which family_fits() has checked.
template <class Protocol>
Protocol protocol_for(int family) noexcept {
    if constexpr (requires {
                      Protocol::v4();
                      Protocol::v6();
                  })
        return family == Protocol::v6().family() ? Protocol::v6() : Protocol::v4();
    else
        return Protocol();
}

// `s`, known to be a connected stream of `protocol` (a listener's), as a Socket of `where`.
template <class Socket, class ExecutorOrContext>
result<connection<Socket>> adopt_connected(ExecutorOrContext&& where, net::tcp_stream& s,
                                           const typename Socket::protocol_type& protocol, std::string& what) {
    Socket socket(std::forward<ExecutorOrContext>(where));
    boost::system::error_code ec;
    socket.assign(protocol, s.native_handle(), ec);
    if (ec) {
        what = ec == boost::system::errc::file_exists ? "already adopted: the descriptor is registered with Asio"
                                                      : "asio::basic_socket::assign";
        return std::error_code(ec);
    }
    auto leased = s.lease();
    (void)leased.socket.release();  // the Asio socket owns it now
    return connection<Socket>{std::move(socket), std::move(leased.lease)};
}

template <class Socket, class ExecutorOrContext>
result<connection<Socket>> adopt(ExecutorOrContext&& where, net::tcp_stream& s, std::string& what) {
    auto checked = connected_stream<typename Socket::protocol_type>(s.native_handle(), what);
    if (!checked) return checked.error();
    return adopt_connected<Socket>(std::forward<ExecutorOrContext>(where), s, *checked, what);
}

}  // namespace detail

// Makes `s`, a connection a cluster listener accepted (or any connected stream), a Socket of
// `where` (an io_context, or an executor: a strand, say). The listener goes on counting it
// until the returned connection's lease ends. `s` is checked first: a stream that holds no
// socket (adopted before, or released) is EBADF, one whose descriptor is no socket ENOTSOCK,
// a datagram socket EPROTOTYPE, a listening one EINVAL, one of another address family than
// Socket's protocol EAFNOSUPPORT, one not connected ENOTCONN, and a descriptor Asio already
// holds EEXIST. On failure `s` is left as it was: still counted, still closed with it.
template <class Socket = boost::asio::ip::tcp::socket, class ExecutorOrContext>
result<connection<Socket>> try_adopt(ExecutorOrContext&& where, net::tcp_stream&& s) {
    std::string what;
    return detail::adopt<Socket>(std::forward<ExecutorOrContext>(where), s, what);
}

// The same, throwing std::system_error that says which check failed:
// "cluster: cannot adopt the connection: not connected: Transport endpoint is not connected".
template <class Socket = boost::asio::ip::tcp::socket, class ExecutorOrContext>
connection<Socket> adopt(ExecutorOrContext&& where, net::tcp_stream&& s) {
    std::string what;
    auto adopted = detail::adopt<Socket>(std::forward<ExecutorOrContext>(where), s, what);
    if (!adopted) throw std::system_error(adopted.error(), "cluster: cannot adopt the connection: " + what);
    return std::move(*adopted);
}

}  // namespace cluster::asio
