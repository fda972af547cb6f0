// cluster::asio::connection<Socket>: a connection handed to Asio — its socket, and the lease that
// keeps the listener that accepted it counting it until the application is done with it.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <cluster/net/connection_lease.hpp>

namespace cluster::asio {

// Keep the lease as long as the socket, beside it (in the session that serves it): the
// listener counts the connection open until the lease ends — for connections(), drained(),
// max_connections, and the primary's least_connections. `auto [socket, lease] = ...` takes both.
template <class Socket = boost::asio::ip::tcp::socket>
struct connection {
    Socket socket;
    net::connection_lease lease;
};

}  // namespace cluster::asio
