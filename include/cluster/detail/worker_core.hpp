// cluster::detail::worker_core: what a worker process does for the cluster whatever its
// protocol — its link's loop, heartbeats, listening, the inbox, leaving — under worker<P>.
#pragma once

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include <cluster/config.hpp>
#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/detail/link.hpp>
#include <cluster/detail/pressure_log.hpp>
#include <cluster/exit_code.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/ipc/request_table.hpp>
#include <cluster/leave_reason.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/net/udp_endpoint.hpp>
#include <cluster/net/udp_socket.hpp>
#include <cluster/overload.hpp>
#include <cluster/wire/codec.hpp>

namespace cluster::detail {

// A listening event's contents.
inline control::listening describe_listening(const net::endpoint& local, bool udp = false) {
    return control::listening{local.family(), local.address(), local.port(), udp};
}

// A worker's inbox bound until the primary's settings say otherwise.
inline constexpr std::size_t default_max_queued_bytes = 64u << 20;

// How long a worker waits for the primary to open a socket for it.
inline constexpr std::chrono::seconds listen_timeout{30};

// How long a finished worker waits for its last messages to reach the primary, and for
// the primary to end its stream in turn.
inline constexpr std::chrono::seconds final_flush_timeout{5};

class worker_core : private net::detail::listener_host {
public:
    // ops: the user's protocol's, which decodes the messages that come for the user.
    worker_core(unsigned id, unique_fd link, const protocol_ops& ops)
        : link_(std::move(link)), ops_(ops), id_(id), previous_(std::exchange(running_, this)) {
        close_link_in_forked_children();
    }
    // A thread worker's, on its own thread.
    worker_core(unsigned id, thread_end link, const protocol_ops& ops)
        : link_(std::move(link)), ops_(ops), id_(id), previous_(std::exchange(running_, this)) {
        close_link_in_forked_children();
    }
    worker_core(const worker_core&) = delete;
    worker_core& operator=(const worker_core&) = delete;
    // Streams may outlive their worker: their closes then go nowhere.
    ~worker_core() {
        running_ = previous_;
        for (auto& [id, weak] : listeners_)
            if (auto state = weak.lock()) state->detach();
        for (auto& [id, weak] : udp_members_)
            if (auto member = weak.lock()) member->detach();
    }

    [[nodiscard]] unsigned id() const noexcept { return id_; }
    [[nodiscard]] unsigned slot() const noexcept { return slot_; }
    [[nodiscard]] pid_t pid() const noexcept { return ::getpid(); }

    [[nodiscard]] detail::link& primary_link() noexcept { return link_; }
    [[nodiscard]] io::mailbox<incoming<erased>>& inbox() noexcept { return inbox_; }

    // Listens on `at` the way `how` says (see schedule): the primary opens the socket, or
    // shares the one it has, and emits a listening event (see worker<P>::listen). Throws
    // std::system_error naming the endpoint and the step that failed.
    CLUSTER_DECL io::task<net::listener> listen(const net::endpoint& at, net::schedule how = net::schedule::round_robin,
                                                net::listener_options o = {});

    // The same, with the failure as a value.
    CLUSTER_DECL io::task<result<net::listener>>
    try_listen(const net::endpoint& at, net::schedule how = net::schedule::round_robin, net::listener_options o = {});

    // A UDP socket on `at`, which the primary opens: one every worker receives from
    // (shared, as Node does), or one per worker slot (reuseport). Any other schedule is
    // EINVAL: the primary has no connections to hand on. Workers that listen on the same
    // endpoint text share it, port 0 included. Throws std::system_error naming the endpoint
    // and the step that failed.
    CLUSTER_DECL io::task<net::udp_socket> listen(const net::udp_endpoint& at,
                                                  net::schedule how = net::schedule::shared, net::udp_options o = {});

    // The same, with the failure as a value.
    CLUSTER_DECL io::task<result<net::udp_socket>>
    try_listen(const net::udp_endpoint& at, net::schedule how = net::schedule::shared, net::udp_options o = {});

    // Tells the primary that `listening_fd`, a socket this worker opened itself, listens:
    // it emits a listening event.
    CLUSTER_DECL io::task<result<void>> announce_listening(int listening_fd);

    // Tells the primary this worker is ready to serve. With primary_options::wait_ready, a
    // rolling reload waits for it, instead of for online, before it retires an old worker.
    CLUSTER_DECL io::task<result<void>> ready();

    // Leaves the cluster: the primary learns this worker chose to (exited_after_disconnect),
    // everything queued is delivered, and the channel closes; receive() then ends. Its
    // listeners accept no more; connections handed to them and not taken go to other workers.
    CLUSTER_DECL io::task<result<void>> disconnect();

    [[nodiscard]] bool is_connected() const noexcept { return link_.is_open() && !inbox_.closed(); }
    // What this worker had to refuse or drop since it started (see docs/reliability.md).
    [[nodiscard]] CLUSTER_DECL overload_counts overload() const noexcept;
    // Requested once the primary disconnects this worker or goes away: pass it to the loops
    // that should end then (an accept loop, a timer).
    [[nodiscard]] std::stop_token stop_token() const noexcept { return stopping_.get_token(); }
    [[nodiscard]] bool stopping() const noexcept { return stopping_.stop_requested(); }
    // Why this worker leaves, set before stop_token() is requested: staying until then.
    [[nodiscard]] cluster::leave_reason leave_reason() const noexcept { return leave_reason_; }
    // The socket to the primary, for diagnostics and tests: bytes written to it directly
    // bypass the protocol (and a primary cuts off a worker whose bytes are not frames). -1 in
    // a thread worker, which has no socket.
    [[nodiscard]] int native_handle() const noexcept { return link_.native_handle(); }

    // The worker's life: say online, run main, deliver what it sent, and return its exit
    // code (1 if it threw).
    CLUSTER_DECL io::task<int> run(const std::function<io::task<void>(worker_core&)>& main);

    // What main threw, if it did: a thread worker's exit event says it.
    [[nodiscard]] const std::string& failure() const noexcept { return failure_; }

private:
    // A process that worker code forks (fork() without exec) is not this worker, though it
    // has a copy of it: its copy of the link is closed as it begins, so it can never speak
    // for the worker, nor send again what the worker had queued (see docs/cluster.md).
    static CLUSTER_DECL void close_link_in_forked_children();

    static CLUSTER_DECL io::task<void> pump(worker_core& self);

    // Delivers what this worker sent, then reads to the end of what the primary sent: the
    // primary answers our end of stream with its own. A process that exits with bytes unread
    // in its socket resets the connection, and the primary would see ECONNRESET instead of a
    // clean disconnect. Once disconnected, what still comes is not for us.
    CLUSTER_DECL io::task<void> leave();

    CLUSTER_DECL io::task<result<net::listener>> open_listener(const net::endpoint& at, net::schedule how,
                                                               const net::listener_options& o, std::string& what);

    CLUSTER_DECL io::task<result<net::udp_socket>> open_udp(const net::udp_endpoint& at, net::schedule how,
                                                            const net::udp_options& o, std::string& what);

    // The primary's answer to `ask`; a failure (with `what` failed) if there is none or it refuses.
    CLUSTER_DECL io::task<result<control::listen_reply>> ask_to_listen(const control::listen_request& ask,
                                                                       std::string& what);

    // listen()'s exception: the worker, the endpoint and the step that failed.
    [[noreturn]] CLUSTER_DECL void cannot_listen(std::error_code error, const std::string& at,
                                                 const std::string& what) const;

    // A connection the primary accepted for one of this worker's listeners. The first ones
    // may come right behind the listen reply, before the listen() that waits for it has
    // resumed: those wait for it.
    CLUSTER_DECL void route(control::connection&& c);

    // A listen() has its answer: connections that came before it go to their listener now,
    // or, with no other listen() waiting for its answer, back to the primary.
    CLUSTER_DECL void route_early();

    // The kernel could not give us a handed connection: this process is at its descriptor
    // limit. Its listener refuses it, and the primary offers it elsewhere.
    CLUSTER_DECL void lost_connection();

    // Past the bound, the oldest messages go: a worker that awaits only some types must not
    // be made to hold every other message sent to it.
    CLUSTER_DECL void stay_within_bound();

    static std::size_t weigh(const incoming<erased>& m) noexcept { return sizeof(incoming<erased>) + m.value.size; }

    CLUSTER_DECL void give_back_connections() noexcept;

    CLUSTER_DECL void stop_listeners() noexcept;

    CLUSTER_DECL void acknowledge(std::uint64_t seq, bool accepted) noexcept override;
    CLUSTER_DECL void report_closed(std::uint32_t listener, bool room_again) noexcept override;
    void send_answers() noexcept override { link_.release(); }

    // An answer the primary need not have at once (see control::answers_held_at_most): held
    // for the link's next message, and sent within answers_held_for whatever comes.
    template <class T>
    void hold_answer(const T& answer) noexcept {
        (void)link_.hold(answer, control::answers_held_at_most);
        if (!background_) return link_.release();
        if (std::exchange(answers_release_armed_, true)) return;
        background_->spawn(release_answers(*this));
    }
    static CLUSTER_DECL io::task<void> release_answers(worker_core& self);
    CLUSTER_DECL void report_unlisten(std::uint32_t listener) noexcept override;

    // False once the primary has asked this worker to leave: nothing follows that.
    CLUSTER_DECL bool dispatch(link_envelope&& e);

    CLUSTER_DECL void apply(const control::settings& s);

    // max_messages: the primary replaces this worker (it keeps serving until disconnected).
    // Asked again after each max_messages more, in case that replacement failed (was not
    // ready in time): retried, but no faster than that, should replacements keep failing.
    CLUSTER_DECL void count_message();

    // Heartbeats come from the loop itself, so they stop when code blocks it (a CPU-bound
    // loop, a blocking call) and not while it only keeps the loop busy. They go on after a
    // disconnect, while main finishes its work: that worker is not hung.
    static CLUSTER_DECL io::task<void> beat(worker_core& self, std::chrono::milliseconds every);
    // The process's metrics registry, to the primary, unless it is empty or the channel full.
    CLUSTER_DECL void report_metrics();

    // A heartbeat's time: the echo brings it back as it was, so only this process's clock
    // measures the round trip.
    static std::chrono::microseconds since_epoch() noexcept {
        return std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now().time_since_epoch());
    }

    static inline thread_local worker_core* running_ = nullptr;  // this thread's newest worker

    detail::link link_;
    const protocol_ops& ops_;
    unsigned id_;
    worker_core* previous_;  // the thread's newest worker before this one, if any
    unsigned slot_ = 0;
    io::latch configured_;  // the primary's settings came, or its stream ended first
    io::mailbox<incoming<erased>> inbox_{&weigh};
    std::size_t max_queued_bytes_ = default_max_queued_bytes;
    overload_counts overload_;
    pressure_log log_;
    std::stop_source stopping_;
    bool leaving_ = false;  // it called disconnect()
    std::string failure_;   // what main threw
    cluster::leave_reason leave_reason_ = cluster::leave_reason::staying;
    io::latch pump_ended_;                // the primary's stream has ended, or it disconnected this worker
    io::scope* background_ = nullptr;     // run()'s: the tasks that end with it
    bool answers_release_armed_ = false;  // release_answers() is on its way
    std::uint64_t max_messages_ = 0;
    std::uint64_t received_ = 0;
    std::chrono::microseconds round_trip_{};  // the last heartbeat's, for the next one to report
    std::map<std::uint32_t, std::weak_ptr<net::detail::listener_state>> listeners_;  // by the primary's listener id
    unsigned listens_pending_ = 0;            // listen() calls waiting for the primary's answer
    std::vector<control::connection> early_;  // connections for a listener whose listen() has not resumed yet

    std::map<std::uint32_t, std::weak_ptr<net::detail::udp_membership>> udp_members_;  // by the primary's id
};

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/worker_core.ipp>
#endif
