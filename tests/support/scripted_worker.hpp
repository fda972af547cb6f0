// support: the scripted worker — one protocol, and one worker_main that runs the behaviour a
// test names in the environment, with the settings it names there too, so that fork-mode
// workers and exec-mode ones (the scripted_worker program) do the same.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/describe.hpp>

#include <cluster/cluster.hpp>

namespace support {

// ---- the protocol between a test (the primary) and its scripted workers ----

// Worker to primary, once: the primary sees a message event between online and disconnect.
struct hello {
    std::uint32_t worker_id = 0;
};
BOOST_DESCRIBE_STRUCT(hello, (), (worker_id))

// Worker to primary: who and where the worker is, as it sees itself.
struct identity {
    bool primary = false;
    bool worker = false;
    std::uint32_t worker_id = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::string tag;          // the tag setting
    std::string exe;          // /proc/self/exe: which program runs the worker
    std::uint64_t inode = 0;  // of that program's file: a replaced file has a new one
    std::uint32_t slot = 0;   // worker<P>::slot()
};
BOOST_DESCRIBE_STRUCT(identity, (), (primary, worker, worker_id, uid, gid, tag, exe, inode, slot))

// Worker to primary: the port its own listening socket got, to compare with the listening event.
struct bound_port {
    std::uint16_t port = 0;
};
BOOST_DESCRIBE_STRUCT(bound_port, (), (port))

// Worker to primary, once: how its w.listen() went. error 0: it listens on `local`.
struct listen_result {
    std::uint32_t worker_id = 0;
    std::int32_t error = 0;  // the error code's value, in `category`
    std::string category;    // the error code's category name
    std::string what;        // listen()'s exception text, when it failed
    std::string local;       // listener::local(), when it listens
    std::uint16_t port = 0;
};
BOOST_DESCRIBE_STRUCT(listen_result, (), (worker_id, error, category, what, local, port))

// Worker to primary: something happened ("holding 7", "closed", "listener closed", ...).
struct note {
    std::uint32_t worker_id = 0;
    std::string text;
};
BOOST_DESCRIBE_STRUCT(note, (), (worker_id, text))

// Primary to worker: "close_listener".
struct command {
    std::string text;
};
BOOST_DESCRIBE_STRUCT(command, (), (text))

// Primary to worker, as a request: answered with a pong. Its answer comes after every
// message the worker sent before it, handoff answers included.
struct ping {
    std::uint32_t n = 0;
};
BOOST_DESCRIBE_STRUCT(ping, (), (n))

struct pong {
    std::uint32_t worker_id = 0;
    std::uint64_t accepted = 0;  // listener::accepted()
    std::uint64_t open = 0;      // listener::connections()
    std::uint64_t rss = 0;       // the worker's resident memory, in bytes
    std::uint64_t dropped = 0;   // overload().events_dropped: messages its inbox dropped
    std::uint64_t refused = 0;   // overload().connections_shed: handoffs that came without their socket
};
BOOST_DESCRIBE_STRUCT(pong, (), (worker_id, accepted, open, rss, dropped, refused))

// Primary to worker, as a request: answered with a work_done.
struct work {
    std::uint64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(work, (), (id))

struct work_done {
    std::uint64_t id = 0;
    std::uint32_t worker_id = 0;
};
BOOST_DESCRIBE_STRUCT(work_done, (), (id, worker_id))

// Worker to primary: it got work work_id and holds it until it is asked to leave.
struct holding {
    std::uint32_t worker_id = 0;
    std::uint64_t work_id = 0;
};
BOOST_DESCRIBE_STRUCT(holding, (), (worker_id, work_id))

// Worker to primary: it is online and waits for a go before it calls ready().
struct waiting {
    std::uint32_t worker_id = 0;
};
BOOST_DESCRIBE_STRUCT(waiting, (), (worker_id))

// Primary to worker: call ready() now.
struct go {
    std::uint32_t worker_id = 0;
};
BOOST_DESCRIBE_STRUCT(go, (), (worker_id))

// Worker to primary: sent just before ready(), so the primary sees when that was.
struct readying {
    std::uint32_t worker_id = 0;
};
BOOST_DESCRIBE_STRUCT(readying, (), (worker_id))

using proto = cluster::protocol<hello, identity, bound_port, listen_result, note, command, ping, pong, work, work_done,
                                holding, waiting, go, readying>;

// ---- the script: a behaviour and its settings, all in the environment ----

// Names the behaviour a scripted worker runs (see behaviour below).
inline constexpr const char* behaviour_env = "CLUSTER_TEST_WORKER";

// The settings behaviours read, each an environment variable.
namespace setting {
inline constexpr const char* marker = "CLUSTER_TEST_MARKER";      // a file written once the worker's code ends
inline constexpr const char* tag = "CLUSTER_TEST_TAG";            // report_identity sends it back
inline constexpr const char* endpoint = "CLUSTER_TEST_ENDPOINT";  // where line servers listen
inline constexpr const char* schedule = "CLUSTER_TEST_SCHEDULE";  // and how
inline constexpr const char* max_connections = "CLUSTER_TEST_MAX_CONNECTIONS";
inline constexpr const char* note_closes = "CLUSTER_TEST_NOTE_CLOSES";  // "1": a note for each close
// The listener's sticky key, as net::parse_sticky_key reads it ("cookie:sid"), and its peek's timeout.
inline constexpr const char* sticky_key = "CLUSTER_TEST_STICKY_KEY";
inline constexpr const char* peek_timeout_ms = "CLUSTER_TEST_PEEK_TIMEOUT_MS";
// A port: a line server first says "inherited <n>", the connections on it it holds unasked.
inline constexpr const char* inherited_port = "CLUSTER_TEST_INHERITED_PORT";
// A descriptor inherited from the test (fork mode): ignore_stop writes a byte to it once
// the primary has asked it to leave.
inline constexpr const char* notify_fd = "CLUSTER_TEST_NOTIFY_FD";
// Workers whose id is at least failing_from misbehave at start, as failure says.
inline constexpr const char* failing_from = "CLUSTER_TEST_FAILING_FROM";
inline constexpr const char* failure = "CLUSTER_TEST_FAILURE";
}  // namespace setting

namespace behaviour {
// Lifecycle.
inline constexpr const char* hello_then_disconnect = "hello_then_disconnect";
inline constexpr const char* hello_then_return = "hello_then_return";
inline constexpr const char* wait_for_disconnect = "wait_for_disconnect";  // writes the marker after
inline constexpr const char* leave_then_wait = "leave_then_wait";
inline constexpr const char* throw_at_once = "throw_at_once";
inline constexpr const char* ignore_disconnect = "ignore_disconnect";  // reads nothing; only a signal ends it
inline constexpr const char* report_identity = "report_identity";
inline constexpr const char* announce_listening = "announce_listening";  // a socket of its own, announced
inline constexpr const char* chatty = "chatty";                          // lines on stdout and stderr
inline constexpr const char* chatty_then_crash = "chatty_then_crash";    // chatty, flushed, then throws
inline constexpr const char* numbered_lines = "numbered_lines";          // numbered_line()s on stdout and stderr
// Writes each command's text after its first byte to stdout ('o') or stderr ('e'), as it is,
// with one write(2), until disconnected.
inline constexpr const char* print_commands = "print_commands";
// Metrics: count_commands counts each command in app_commands_total{text}, sets
// app_last_length and observes app_command_bytes (cluster::metrics), then answers it with a
// note "counted <text>".
inline constexpr const char* count_commands = "count_commands";
// endless_bytes on stdout without a newline (from a thread, which then ends the line);
// answers each ping with a note of how many it has written so far.
inline constexpr const char* endless_line = "endless_line";
// Connections: listen as the settings say, and serve the line protocol (see serve_lines in
// scripted_worker.cpp) until disconnected; lazy_lines takes nothing until disconnected or
// told to close its listener, then serves what accept() still gives.
inline constexpr const char* serve_lines = "serve_lines";
inline constexpr const char* lazy_lines = "lazy_lines";
// Listens as the settings say, and echoes each request head back (see serve_head in
// scripted_worker.cpp), with notes of connections handed with nothing to read and of each end.
inline constexpr const char* echo_heads = "echo_heads";
// Work: answer_work calls ready() (unless failing never_ready), then answers work until
// disconnected; hold_work answers only once disconnected, after held_work.
inline constexpr const char* answer_work = "answer_work";
inline constexpr const char* hold_work = "hold_work";
inline constexpr const char* ignore_stop = "ignore_stop";  // reads to the end, then keeps running
inline constexpr const char* identify = "identify";        // sends its identity (tag, slot), then answers work
inline constexpr const char* ready_on_go = "ready_on_go";  // waits for a go before ready(), then answers work
// A note naming each of systemd's variables (NOTIFY_SOCKET, LISTEN_FDS, ...) it finds set,
// space-separated ("" if none), then answers work.
inline constexpr const char* report_systemd_env = "report_systemd_env";
// Hostile or greedy: what a broken or compromised worker may do to its primary.
inline constexpr const char* huge_count = "huge_count";  // listens, then claims 2^32-1 connections closed, 4 times
inline constexpr const char* fd_flood = "fd_flood";      // valid frames, each with fds_per_frame unannounced fds
inline constexpr const char* flood_messages = "flood_messages";  // flood_count notes of flood_bytes, then a hello
inline constexpr const char* pings_only = "pings_only";          // answers pings, takes no other message
inline constexpr const char* out_of_fds = "out_of_fds";          // throws EMFILE at once
}  // namespace behaviour

// fd_flood's frames and the fds on each; flood_messages' notes and their size.
inline constexpr int flood_frames = 100;
inline constexpr int fds_per_frame = 200;
inline constexpr int flood_count = 40;
inline constexpr std::size_t flood_bytes = 16u << 20;

namespace failure {
inline constexpr const char* never_ready = "never_ready";  // answers work, but never calls ready()
inline constexpr const char* crash = "crash";              // throws at once
}  // namespace failure

// wait_for_disconnect's marker file says this once its receive() has ended.
inline constexpr std::string_view finished_mark = "receive() ended";

// What chatty workers print: numbered lines on both streams, then a line without a newline.
inline constexpr int chatty_out_lines = 2000;
inline constexpr int chatty_err_lines = 200;
inline constexpr std::string_view chatty_tail = "tail without a newline";
inline std::string chatty_line(std::string_view stream, int i) { return std::string(stream) + " " + std::to_string(i); }

// What numbered_lines workers print: numbered_out_lines on stdout and numbered_err_lines on
// stderr between them, each naming its stream, worker and number. Most are short, every
// hundredth longer than a pipe read, so that lines reach the primary in pieces.
inline constexpr int numbered_out_lines = 2500;
inline constexpr int numbered_err_lines = 250;
inline std::string numbered_line(std::string_view stream, unsigned worker_id, int i) {
    const std::size_t padding = i % 100 == 0 ? 10'000 : static_cast<std::size_t>(i * 37 % 300);
    return std::string(stream) + " " + std::to_string(worker_id) + " " + std::to_string(i) + " " +
           std::string(padding, static_cast<char>('a' + i % 26));
}

// What an endless_line worker writes before its newline.
inline constexpr std::uint64_t endless_bytes = 64u << 20;

// What hold_work still does after it was asked to leave, before it answers.
inline constexpr std::chrono::milliseconds held_work{150};

// A line server gives a fresh connection this long to ask once its worker is leaving.
inline constexpr std::chrono::seconds first_request_grace{2};

// The scripted_worker program, which exec-mode workers run (and which, started on its own,
// is an exec-mode primary of identify workers: see scripted_worker_program.cpp).
inline constexpr const char* program = CLUSTER_SCRIPTED_WORKER;

// worker_main for every scripted worker: runs the behaviour named by behaviour_env, and
// throws if there is none by that name.
cluster::task<void> worker_main(cluster::worker<proto>& w);

// This process's resident memory, in bytes, counting what a sanitizer keeps only for itself
// as free.
std::uint64_t own_rss();

// The file this process runs, as /proc/self/exe names it, and that file's inode.
std::string self_exe();
std::uint64_t own_inode();

}  // namespace support
