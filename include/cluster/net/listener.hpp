// cluster::net::listener: a worker's side of a listening endpoint — the connections the primary
// hands it, or the socket it accepts on itself — counted while open, and drained when it leaves.
#pragma once

#include <cluster/config.hpp>

#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/connection_lease.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/net/sticky_key.hpp>
#include <cluster/net/tcp_stream.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::net {

struct listener_options {
    // Open connections at which this worker takes no more: the primary offers them to
    // another worker (schedules where it accepts), or this worker stops accepting until one
    // closes (shared, reuseport). 0: no limit.
    std::size_t max_connections = 0;
    // The socket's options (backlog, v6_only, ...), used by whoever creates it first.
    listen_options socket;
    // schedule::sticky: what a connection keeps its worker by — the client's address, or a
    // key the primary peeks at in its request (behind a proxy, every address is the proxy's);
    // schedule::custom: what the primary peeks at for primary_options::pick. Set by whoever
    // creates the socket first, as `socket` is.
    sticky_key sticky;
};

namespace detail {

// A stop callback that passes the stop on to `source`: a named type, where a coroutine that
// is not inline keeps it in its frame (a lambda's type would have no linkage).
struct stop_with {
    std::stop_source* source;
    void operator()() const noexcept { source->request_stop(); }
};

// What a listener tells the primary, through its worker's channel.
class listener_host {
public:
    virtual void acknowledge(std::uint64_t seq, bool accepted) noexcept = 0;
    // room_again: the listener refused a connection at its limit, and has room now.
    virtual void report_closed(std::uint32_t listener, bool room_again) noexcept = 0;
    // What the two above held for the worker's next message leaves now.
    virtual void send_answers() noexcept = 0;
    virtual void report_unlisten(std::uint32_t listener) noexcept = 0;

protected:
    ~listener_host() = default;
};

struct handed_connection {
    std::uint64_t seq = 0;
    unique_fd socket;
};

// A latch that can be waited on again: each notify() wakes the waiters so far.
class notifier {
public:
    io::task<bool> wait() {
        auto current = current_;  // kept alive in this frame until its waiters have run
        co_return co_await current->wait();
    }
    void notify() { std::exchange(current_, std::make_shared<io::latch>())->set(); }

private:
    std::shared_ptr<io::latch> current_ = std::make_shared<io::latch>();
};

// Shared by the listener, the worker that routes connections to it, and the streams it
// handed out (which outlive it, and report their close to it).
class listener_state final : public connection_tracker {
public:
    listener_state(listener_host* host, std::uint32_t id, schedule s, endpoint local, unique_fd socket,
                   const listener_options& o)
        : host_(host), id_(id), schedule_(s), local_(std::move(local)), socket_(std::move(socket)),
          max_connections_(o.max_connections),
          // Where the primary hands the connections, it counts them open until closed: the
          // schedules that weigh them need it, and status() reports it.
          reports_closes_(primary_accepts(s)) {
        // listener::accept_ready() takes what readiness announced, or finds it taken.
        if (socket_) ::fcntl(socket_.get(), F_SETFL, ::fcntl(socket_.get(), F_GETFL) | O_NONBLOCK);
    }

    // A connection the primary handed over: queued for accept(), or refused. One that came
    // without its socket (this process is out of descriptors) is refused like one past
    // max_connections: the next close says there is room again.
    CLUSTER_DECL void offer(std::uint64_t seq, unique_fd socket);

    // The worker is leaving: what was handed over is still served, nothing more is taken.
    CLUSTER_DECL void stop_accepting() noexcept;

    // What was handed over and not taken goes back to the primary, which offers it elsewhere.
    CLUSTER_DECL void give_back() noexcept;

    // The listener is gone.
    CLUSTER_DECL void close() noexcept;

    // A worker that refused a connection for its limit says when it has room again: the
    // primary may be holding that connection for it.
    CLUSTER_DECL void closed() noexcept override;

    void detach() noexcept { host_ = nullptr; }

    [[nodiscard]] bool accepting() const noexcept { return !stopped_; }
    // Where the primary accepts; and, once the primary has stopped the socket or this worker
    // is leaving, for the connections a graceful stop took out of the socket for it.
    [[nodiscard]] CLUSTER_DECL bool takes_handed_only() const noexcept;
    [[nodiscard]] CLUSTER_DECL bool at_limit(std::size_t queued) const noexcept;

    listener_host* host_;
    std::uint32_t id_;
    schedule schedule_;
    endpoint local_;
    unique_fd socket_;  // shared, reuseport: the socket this worker accepts on
    std::size_t max_connections_;
    bool reports_closes_;
    bool stopped_ = false;
    bool closed_ = false;
    bool refused_at_limit_ = false;
    bool socket_stopped_ = false;  // shared, reuseport: the primary shut the socket down
    std::size_t open_ = 0;
    std::uint64_t accepted_ = 0;
    io::mailbox<handed_connection> handed_;
    std::stop_source handed_waiting_;  // requested while handed_ holds connections
    std::stop_source stop_;
    notifier room_;  // a connection closed, or accepting stopped
    notifier idle_;  // no connection open any more
};

}  // namespace detail

class listener {
public:
    listener() noexcept = default;
    explicit listener(std::shared_ptr<detail::listener_state> state) noexcept : state_(std::move(state)) {}
    listener(listener&&) noexcept = default;
    CLUSTER_DECL listener& operator=(listener&& other) noexcept;
    ~listener() { close(); }

    // The next connection. Once the worker is leaving (the primary disconnected it) or
    // close() was called, the connections already handed to it come first, then
    // errc::listener_closed. Answers the awaiting task's stop token (operation_canceled).
    CLUSTER_DECL io::task<result<tcp_stream>> accept();

    // Stops accepting: connections handed over and not taken go back to the primary, which
    // takes this worker off the socket (and closes it once no worker listens there). The
    // worker may listen on the endpoint again. A listener destroyed closes too, unless by an
    // exception on its worker's way out: a worker that fails, like one killed, keeps its place
    // for its replacement.
    CLUSTER_DECL void close() noexcept;

    [[nodiscard]] bool is_open() const noexcept { return state_ && !state_->closed_; }
    // The address bound: a port 0 resolved to the port the kernel chose.
    [[nodiscard]] const endpoint& local() const noexcept { return state_->local_; }
    [[nodiscard]] net::schedule schedule() const noexcept { return state_->schedule_; }
    // Accepted through this listener and not closed yet.
    [[nodiscard]] std::size_t connections() const noexcept { return state_->open_; }
    [[nodiscard]] std::uint64_t accepted() const noexcept { return state_->accepted_; }

    // Until every connection accepted through this listener is closed. False if the
    // awaiting task was asked to stop first.
    CLUSTER_DECL io::task<bool> drained();

    // The listening socket this worker accepts on itself (shared, reuseport), for code that
    // accepts there by other means (an Asio acceptor: cluster::asio::native_acceptor); -1 where
    // the primary accepts and hands the connections over, and once closed.
    [[nodiscard]] int native_handle() const noexcept { return state_ && !state_->closed_ ? state_->socket_.get() : -1; }
    // Counts one more connection open, accepted on native_handle() by other means: connections(),
    // accepted(), max_connections and drained() include it until the lease ends.
    [[nodiscard]] CLUSTER_DECL connection_lease count_accepted();
    // Whether the next connection is this worker's to accept on native_handle() itself: false
    // where the primary hands them over, while handed ones wait, once the primary or this worker
    // stopped the socket (a graceful stop, leaving, close()), and at max_connections. accept()
    // then takes them as it must; code accepting by other means waits for this stop token.
    [[nodiscard]] bool accepts_on_socket() const noexcept {
        return state_ && !state_->closed_ && !state_->takes_handed_only() && !state_->at_limit(0);
    }
    // Requested once this listener takes no more connections of its own: its worker is leaving,
    // or it was closed.
    [[nodiscard]] std::stop_token stop_token() const noexcept {
        return state_ ? state_->stop_.get_token() : std::stop_token{};
    }
    // Requested while connections the primary handed over wait (shared, reuseport: a spare
    // socket's, see docs/connections.md), a fresh token once they are taken: code accepting on
    // native_handle() stops its accept then, and accept() takes them.
    [[nodiscard]] std::stop_token handed_token() const noexcept {
        return state_ ? state_->handed_waiting_.get_token() : std::stop_token{};
    }
    // The worker tells the primary now that it took what it accepted, rather than with its
    // next message (or within 2 ms): for a connection given to code that may close it
    // without a shutdown, whose client sees the end only once the primary, told, closes its
    // own copy.
    void answer_now() const noexcept {
        if (state_ && state_->host_) state_->host_->send_answers();
    }

private:
    static CLUSTER_DECL tcp_stream track(const std::shared_ptr<detail::listener_state>& state, tcp_stream s);

    static CLUSTER_DECL io::task<result<tcp_stream>> take_handed(std::shared_ptr<detail::listener_state> state);

    static CLUSTER_DECL io::task<result<tcp_stream>> accept_on_socket(std::shared_ptr<detail::listener_state> state);

    // The next connection on `fd`, a listening socket other workers may wait on too:
    // readiness, then accept4(). An io_uring accept waits exclusively, and one stopped after
    // it was woken (a worker closing its listener, or leaving) takes the wake-up with it: the
    // connection would wait in the queue until the next one came. Readiness wakes every
    // waiter, and one of them takes it, as with Node's SCHED_NONE.
    static CLUSTER_DECL io::task<result<tcp_stream>> accept_ready(int fd, std::stop_token stop);

    std::shared_ptr<detail::listener_state> state_;
};

}  // namespace cluster::net

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/net/impl/listener.ipp>
#endif
