// cluster::asio::native_acceptor: an Asio acceptor on the listening socket a shared or reuseport
// listener accepts on itself, for code that must have an asio::basic_socket_acceptor of its own.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <cluster/asio/adopt.hpp>
#include <cluster/error.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::asio {

namespace detail {

template <class Protocol, class Executor>
result<boost::asio::basic_socket_acceptor<Protocol, Executor>>
native_acceptor(const Executor& ex, const net::listener& l, std::string& what) {
    if (l.native_handle() < 0) {
        what = "the listener has no socket of its own (the primary accepts for its schedule, or it is closed)";
        return errno_code(EINVAL);
    }
    typename Protocol::endpoint local;
    socklen_t len = static_cast<socklen_t>(local.capacity());
    if (::getsockname(l.native_handle(), local.data(), &len) != 0) return errno_code(errno);
    local.resize(len);
    if (!family_fits<Protocol>(local.data()->sa_family)) {
        what = "a socket of another address family than the acceptor's protocol";
        return errno_code(EAFNOSUPPORT);
    }
    unique_fd copy(::fcntl(l.native_handle(), F_DUPFD_CLOEXEC, 0));
    if (!copy) return errno_code(errno);
    boost::asio::basic_socket_acceptor<Protocol, Executor> acceptor(ex);
    boost::system::error_code ec;
    acceptor.assign(local.protocol(), copy.get(), ec);
    if (ec) {
        what = "asio::basic_socket_acceptor::assign";
        return std::error_code(ec);
    }
    (void)copy.release();
    return acceptor;
}

}  // namespace detail

// An acceptor on `ex` holding a duplicate of l.native_handle(): the listener keeps its own. It is
// EINVAL where the primary accepts (every schedule but shared and reuseport) or once the listener
// is closed. What it accepts is the application's to count (l.count_accepted()), and it is the
// application's to stop accepting once the worker leaves (w.stop_token()): the connections the
// primary takes out of the socket for a graceful stop then come through l.accept(), which
// cluster::asio::acceptor serves with the rest, under every schedule.
template <class Protocol = boost::asio::ip::tcp, class Executor = boost::asio::any_io_executor>
result<boost::asio::basic_socket_acceptor<Protocol, Executor>>
try_native_acceptor(const std::type_identity_t<Executor>& ex, const net::listener& l) {
    std::string what;
    return detail::native_acceptor<Protocol>(ex, l, what);
}

// The same, throwing std::system_error that says why.
template <class Protocol = boost::asio::ip::tcp, class Executor = boost::asio::any_io_executor>
boost::asio::basic_socket_acceptor<Protocol, Executor> native_acceptor(const std::type_identity_t<Executor>& ex,
                                                                       const net::listener& l) {
    std::string what;
    auto made = detail::native_acceptor<Protocol>(ex, l, what);
    if (!made) throw std::system_error(made.error(), "cluster: no Asio acceptor on the listener's socket: " + what);
    return std::move(*made);
}

}  // namespace cluster::asio
