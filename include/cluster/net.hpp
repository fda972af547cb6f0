// The net layer in one include — endpoints, listening sockets, streams, UDP sockets, a worker's
// listener and the schedules (and sticky keys) that feed it — and its everyday names in namespace cluster.
#pragma once

#include <cluster/net/connection_lease.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/inherited_socket.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/net/sticky_key.hpp>
#include <cluster/net/tcp_stream.hpp>
#include <cluster/net/udp_endpoint.hpp>
#include <cluster/net/udp_socket.hpp>

namespace cluster {
using net::accept;
using net::candidate;
using net::connect;
using net::connection_lease;
using net::datagram;
using net::endpoint;
using net::endpoint_errc;
using net::listen_options;
using net::listen_socket;
using net::listener;
using net::listener_options;
using net::local_endpoint;
using net::parse_schedule;
using net::parse_sticky_key;
using net::peer_endpoint;
using net::pick_context;
using net::pick_function;
using net::schedule;
using net::sticky_key;
using net::tcp_stream;
using net::to_string;
using net::try_listen_socket;
using net::udp_endpoint;
using net::udp_options;
using net::udp_socket;
}  // namespace cluster
