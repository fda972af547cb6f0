// cluster::control: the messages a primary and its workers exchange for themselves (online,
// listening, disconnect, heartbeats, readiness), and link_protocol<P>, which carries them beside P.
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

// Primary to worker, first thing: what the worker's loop does on its own for supervision.
struct settings {
    std::int64_t heartbeat_interval_ms = 0;  // 0: no heartbeats
    std::uint64_t max_messages = 0;          // ask to be replaced after this many; 0: never
};
BOOST_DESCRIBE_STRUCT(settings, (), (heartbeat_interval_ms, max_messages))

// Worker to primary, every heartbeat interval while its loop turns.
struct heartbeat {};
BOOST_DESCRIBE_STRUCT(heartbeat, (), ())

// Worker to primary: worker<P>::ready(), for primary_options::wait_ready.
struct ready {};
BOOST_DESCRIBE_STRUCT(ready, (), ())

// Worker to primary: this worker has received its max_messages; replace it.
struct recycle {};
BOOST_DESCRIBE_STRUCT(recycle, (), ())

template <class P>
struct link_protocol_of;
template <class... Ts>
struct link_protocol_of<wire::protocol<Ts...>> {
    using type = wire::protocol<online, listening, disconnect, leaving, settings, heartbeat, ready, recycle, Ts...>;
};

// What the socketpair between a primary and a worker carries: P's messages and the above.
template <class P>
using link_protocol = typename link_protocol_of<P>::type;

// How many of a link's alternatives come before P's own.
inline constexpr std::size_t control_count = 8;

} // namespace cluster::control
