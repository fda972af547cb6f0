// cluster::control: the messages a primary and its workers exchange for themselves (online,
// listening, disconnect), and link_protocol<P>, which carries them beside the user's P.
#pragma once

#include <cstdint>
#include <string>

#include <boost/describe.hpp>

#include <cluster/wire/protocol.hpp>

namespace cluster::control {

// Worker to primary, first thing: the worker runs (Node's 'online').
struct online {
    std::int32_t pid = 0;
};
BOOST_DESCRIBE_STRUCT(online, (), (pid))

// Worker to primary: a socket of the worker's is listening (Node's 'listening').
struct listening {
    std::int32_t family = 0;  // AF_INET, AF_INET6 or AF_UNIX
    std::string address;
    std::uint16_t port = 0;
};
BOOST_DESCRIBE_STRUCT(listening, (), (family, address, port))

// Primary to worker: finish what you are doing and leave; receive() ends.
struct disconnect {};
BOOST_DESCRIBE_STRUCT(disconnect, (), ())

// Worker to primary: this worker is leaving on its own (it called disconnect()).
struct leaving {};
BOOST_DESCRIBE_STRUCT(leaving, (), ())

template <class P>
struct link_protocol_of;
template <class... Ts>
struct link_protocol_of<wire::protocol<Ts...>> {
    using type = wire::protocol<online, listening, disconnect, leaving, Ts...>;
};

// What the socketpair between a primary and a worker carries: P's messages and the above.
template <class P>
using link_protocol = typename link_protocol_of<P>::type;

// How many of a link's alternatives come before P's own.
inline constexpr std::size_t control_count = 4;

} // namespace cluster::control
