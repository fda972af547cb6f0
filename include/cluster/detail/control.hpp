// cluster::detail::control: the messages a primary and its workers exchange for themselves (online,
// listening, disconnect, heartbeats and their echoes, readiness, connections), and link_protocol, which carries them
// beside the user's.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <boost/describe/class.hpp>

#include <cluster/metrics/snapshot.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/protocol.hpp>
#include <cluster/wire/raw_message.hpp>

namespace cluster::detail::control {

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
    bool udp = false;  // a UDP socket; else a stream one (TCP or Unix-domain)
};
BOOST_DESCRIBE_STRUCT(listening, (), (family, address, port, udp))

// Primary to worker: finish what you are doing and leave; receive() ends. `reason` is a
// leave_reason: whether another worker replaces this one, so its clients can be told.
struct disconnect {
    std::uint8_t reason = 0;
};
BOOST_DESCRIBE_STRUCT(disconnect, (), (reason))

// Worker to primary: this worker is leaving on its own (it called disconnect()).
struct leaving {};
BOOST_DESCRIBE_STRUCT(leaving, (), ())

// Primary to worker, first thing: the slot the worker fills, and what its loop does on its
// own for supervision. The worker's code starts once it has come.
struct settings {
    std::uint32_t slot = 0;
    std::int64_t heartbeat_interval_ms = 0;  // 0: no heartbeats
    std::uint64_t max_messages = 0;          // ask to be replaced after this many; 0: never
    std::uint64_t max_queued_bytes = 0;      // the inbox's bound; 0: the default
};
BOOST_DESCRIBE_STRUCT(settings, (), (slot, heartbeat_interval_ms, max_messages, max_queued_bytes))

// Worker to primary, every heartbeat interval while its loop turns: when it left (the
// worker's steady clock, in microseconds), and the round trip the last echo measured.
struct heartbeat {
    std::int64_t sent_us = 0;
    std::int64_t round_trip_us = 0;  // 0 before the first echo
};
BOOST_DESCRIBE_STRUCT(heartbeat, (), (sent_us, round_trip_us))

// Primary to worker, on each heartbeat: its sent_us back, so the worker measures the round
// trip through both loops (the primary's reading and the worker's).
struct heartbeat_echo {
    std::int64_t sent_us = 0;
};
BOOST_DESCRIBE_STRUCT(heartbeat_echo, (), (sent_us))

// Worker to primary, with each heartbeat while its metrics registry holds a family, and once
// more as it leaves: the application's metrics, for the primary's /metrics.
struct metrics_report {
    metrics::registry_snapshot snapshot;
};
BOOST_DESCRIBE_STRUCT(metrics_report, (), (snapshot))

// Worker to primary: worker<P>::ready(), for primary_options::wait_ready.
struct ready {};
BOOST_DESCRIBE_STRUCT(ready, (), ())

// Worker to primary: this worker has received its max_messages; replace it.
struct recycle {};
BOOST_DESCRIBE_STRUCT(recycle, (), ())

// Worker to primary, as a request: listen on `endpoint` (its text: "udp:..." for UDP, a Unix
// path made absolute by the worker) with `schedule`.
struct listen_request {
    std::string endpoint;
    std::uint8_t schedule = 0;
    std::int32_t backlog = 0;
    std::int8_t v6_only = -1;  // -1: the system's default
    bool reuse_address = true;
    bool replace_stale_unix_socket = true;
    std::int32_t mode = -1;  // the socket file's; -1: none asked
    std::uint32_t defer_accept_s = 0;
    // The sticky key: net::sticky_key::source, its name, and the peek's limits.
    std::uint8_t key_from = 0;
    std::string key_name;
    std::uint32_t peek_bytes = 0;
    std::uint32_t peek_timeout_ms = 0;
};
BOOST_DESCRIBE_STRUCT(listen_request, (),
                      (endpoint, schedule, backlog, v6_only, reuse_address, replace_stale_unix_socket, mode,
                       defer_accept_s, key_from, key_name, peek_bytes, peek_timeout_ms))

// Primary to worker, the answer: the listener's id and address, and the socket to accept
// on when the worker accepts itself (shared, reuseport); or the errno and the step that failed.
struct listen_reply {
    std::int32_t error = 0;
    std::string what;
    std::uint32_t listener = 0;
    std::string local;
    unique_fd socket;
};
BOOST_DESCRIBE_STRUCT(listen_reply, (), (error, what, listener, local, socket))

// Primary to worker: a connection the primary accepted for `listener`. The primary keeps
// its own copy until the worker answers with a handoff_ack, so none is lost to a worker
// that dies or refuses first.
struct connection {
    std::uint32_t listener = 0;
    std::uint64_t seq = 0;
    unique_fd socket;
};
BOOST_DESCRIBE_STRUCT(connection, (), (listener, seq, socket))

// Worker to primary: the connection `seq` was taken by the worker's code, or refused (the
// worker is at its connection limit, or no longer accepts): the primary offers it elsewhere.
struct handoff_ack {
    std::uint64_t seq = 0;
    bool accepted = false;
};
BOOST_DESCRIBE_STRUCT(handoff_ack, (), (seq, accepted))

// A worker holds its answers about connections it took, and those that closed, to send
// them with its next message: at most this many, for at most this long. Under load they
// then cost the primary one wake-up for several, not one each (a new connection per request
// cost it two). Fewer than the primary's window of unanswered handoffs, so that no worker is
// passed over for answers it only holds.
inline constexpr std::size_t answers_held_at_most = 8;
inline constexpr std::chrono::milliseconds answers_held_for{2};

// Worker to primary: `count` connections handed out by `listener` have closed (for the
// schedules that weigh open connections).
struct connections_closed {
    std::uint32_t listener = 0;
    std::uint32_t count = 0;
};
BOOST_DESCRIBE_STRUCT(connections_closed, (), (listener, count))

// Worker to primary: this worker closed its listener on `listener`, and takes its place there
// no more (a worker that dies or leaves keeps it for its slot's replacement).
struct unlisten {
    std::uint32_t listener = 0;
};
BOOST_DESCRIBE_STRUCT(unlisten, (), (listener))

// What the socketpair between a primary and a worker carries: the above, decoded by the
// link, and the user's messages, left raw for the typed end that knows their types (an open
// protocol: this code is the same whatever the user's protocol is).
using link_protocol = wire::protocol<online, listening, disconnect, leaving, settings, heartbeat, heartbeat_echo,
                                     metrics_report, ready, recycle, listen_request, listen_reply, connection,
                                     handoff_ack, connections_closed, unlisten, wire::raw_message>;

// How many of a link's alternatives are control messages: the raw user's message comes last.
inline constexpr std::size_t count = link_protocol::size - 1;

// Whether none of P's messages has a control message's type id: the link would take it for one.
template <class P>
inline constexpr bool apart_from_control = false;
template <class... Ts>
inline constexpr bool apart_from_control<wire::protocol<Ts...>> =
    wire::distinct_type_ids<online, listening, disconnect, leaving, settings, heartbeat, heartbeat_echo, metrics_report,
                            ready, recycle, listen_request, listen_reply, connection, handoff_ack, connections_closed,
                            unlisten, Ts...>;

}  // namespace cluster::detail::control
