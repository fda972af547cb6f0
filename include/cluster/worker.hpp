// cluster::worker<P>: a worker process's side of the cluster — its id and slot, messages from and to
// the primary, requests both ways, messages to other workers, listening, heartbeats, and leaving gracefully.
#pragma once

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
#include <cluster/net/endpoint.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/net/schedule.hpp>
#include <cluster/overload.hpp>
#include <cluster/wire/codec.hpp>

namespace cluster {

namespace detail {
// A listening event's contents.
inline detail::control::listening describe_listening(const net::endpoint& local) {
    return detail::control::listening{local.family(), local.address(), local.port()};
}

// A worker's inbox bound until the primary's settings say otherwise.
inline constexpr std::size_t default_max_queued_bytes = 64u << 20;

// How long a worker waits for the primary to open a socket for it.
inline constexpr std::chrono::seconds listen_timeout{30};

// How long a finished worker waits for its last messages to reach the primary, and for
// the primary to end its stream in turn.
inline constexpr std::chrono::seconds final_flush_timeout{5};
}  // namespace detail

template <class P>
class worker : private detail::link_owner<P>, public detail::link_end<P>, private net::detail::listener_host {

public:
    using link_protocol = detail::control::link_protocol<P>;
    using main_function = std::function<io::task<void>(worker&)>;

    worker(unsigned id, unique_fd link)
        : detail::link_owner<P>(std::move(link)), detail::link_end<P>(this->owned_link), id_(id) {}
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;
    // Streams may outlive their worker: their closes then go nowhere.
    ~worker() {
        for (auto& [id, weak] : listeners_)
            if (auto state = weak.lock()) state->detach();
    }

    [[nodiscard]] unsigned id() const noexcept { return id_; }
    // The slot this worker fills (worker_handle::slot()): a worker that replaces another has
    // a new id, and the same slot.
    [[nodiscard]] unsigned slot() const noexcept { return slot_; }
    [[nodiscard]] pid_t pid() const noexcept { return ::getpid(); }

    // The next message from the primary (or, routed, from another worker); nothing once
    // the primary has disconnected this worker or gone away.
    [[nodiscard]] auto receive() { return inbox_.take(); }

    // The next message that is a T; other messages stay for receive().
    template <class T>
        requires wire::message_of<T, P>
    io::task<std::optional<incoming<T>>> receive() {
        auto m = co_await inbox_.take([](const incoming<P>& m) noexcept { return m.template is<T>(); });
        if (!m) co_return std::nullopt;
        co_return incoming<T>{std::move(std::get<T>(m->value)), m->from, m->request_tag};
    }

    // To another worker, through the primary; dropped if that worker is gone.
    template <class T>
        requires wire::message_of<T, P>
    [[nodiscard]] auto send_to(unsigned worker_id, const T& msg) {
        if (worker_id == 0 || worker_id == wire::frame_flags::all_workers)
            throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                    "cluster: send_to() needs a worker id (use send() for the primary)");
        return channel().send(msg, worker_id, wire::frame_flags::routed);
    }

    // To every other worker, through the primary.
    template <class T>
        requires wire::message_of<T, P>
    [[nodiscard]] auto broadcast(const T& msg) {
        return channel().send(msg, wire::frame_flags::all_workers, wire::frame_flags::routed);
    }

    // Listens on `at` the way `how` says (see schedule): the primary opens the socket, or
    // shares the one it has, and emits a listening event. Workers that listen on the same
    // endpoint text share it, port 0 included (they all get the port the kernel chose, as in
    // Node). Throws std::system_error naming the endpoint and the step that failed.
    io::task<net::listener> listen(const net::endpoint& at, net::schedule how = net::schedule::round_robin,
                                   net::listener_options o = {}) {
        std::string what;
        auto opened = co_await open_listener(at, how, o, what);
        if (!opened)
            throw std::system_error(opened.error(), "cluster: worker " + std::to_string(id_) + " cannot listen on " +
                                                        at.to_string() + ": " + what);
        co_return std::move(*opened);
    }

    // The same, with the failure as a value.
    io::task<result<net::listener>> try_listen(const net::endpoint& at, net::schedule how = net::schedule::round_robin,
                                               net::listener_options o = {}) {
        std::string what;
        co_return co_await open_listener(at, how, o, what);
    }

    // Tells the primary that `listening_fd`, a socket this worker opened itself, listens:
    // it emits a listening event.
    io::task<result<void>> announce_listening(int listening_fd) {
        auto local = net::local_endpoint(listening_fd);
        if (!local) co_return local.error();
        const auto described = detail::describe_listening(*local);
        co_return co_await channel().send(described);
    }

    // Tells the primary this worker is ready to serve. With primary_options::wait_ready, a
    // rolling reload waits for it, instead of for online, before it retires an old worker.
    io::task<result<void>> ready() {
        const detail::control::ready r;
        co_return co_await channel().send(r);
    }

    // Leaves the cluster: the primary learns this worker chose to (exited_after_disconnect),
    // everything queued is delivered, and the channel closes; receive() then ends. Its
    // listeners accept no more; connections handed to them and not taken go to other workers.
    io::task<result<void>> disconnect() {
        // Before `leaving`: once the channel is shut, no answer about a connection could
        // reach the primary, which then offers every unanswered one elsewhere.
        give_back_connections();
        const detail::control::leaving bye;
        auto sent = co_await channel().send(bye);
        if (!sent) co_return sent;
        co_return co_await channel().shutdown();
    }

    [[nodiscard]] bool is_connected() const noexcept { return channel().is_open() && !inbox_.closed(); }
    // What this worker had to refuse or drop since it started (see docs/reliability.md).
    [[nodiscard]] overload_counts overload() const noexcept {
        overload_counts counts = overload_;
        counts.fds_lost = channel().fds_lost();
        return counts;
    }
    // Requested once the primary disconnects this worker or goes away: pass it to the loops
    // that should end then (an accept loop, a timer).
    [[nodiscard]] std::stop_token stop_token() const noexcept { return stopping_.get_token(); }
    [[nodiscard]] bool stopping() const noexcept { return stopping_.stop_requested(); }
    // The socket to the primary, for diagnostics and tests: bytes written to it directly
    // bypass the protocol (and a primary cuts off a worker whose bytes are not frames).
    [[nodiscard]] int native_handle() const noexcept { return channel().native_handle(); }

    // The worker process's life: say online, run main, deliver what it sent, and return
    // its exit code (1 if it threw).
    io::task<int> run(const main_function& main) {
        io::scope background;
        background_ = &background;
        background.spawn(pump(*this));
        const detail::control::online hello{static_cast<std::int32_t>(::getpid())};
        (void)co_await channel().send(hello);
        (void)co_await configured_.wait();  // main may ask for slot()
        int code = 0;
        try {
            co_await main(*this);
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "cluster: worker %u: uncaught exception: %s\n", id_, e.what());
            const bool exhausted =
                e.code().category() == std::system_category() && detail::out_of_resources(e.code().value());
            code = exhausted ? exit_code::out_of_resources : 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "cluster: worker %u: uncaught exception: %s\n", id_, e.what());
            code = 1;
        }
        (void)co_await io::with_timeout(leave(), detail::final_flush_timeout);
        co_return code;
    }

private:
    ipc::channel<link_protocol>& channel() noexcept { return this->link_.channel; }
    const ipc::channel<link_protocol>& channel() const noexcept { return this->link_.channel; }
    ipc::request_table<typename link_protocol::variant>& requests() noexcept { return this->link_.requests; }

    static io::task<void> pump(worker& self) {
        while (auto e = co_await self.channel().receive_envelope()) {
            if (!self.dispatch(std::move(*e))) break;
        }
        self.inbox_.close();
        self.requests().fail_all(make_error_code(errc::peer_gone));
        self.stop_listeners();
        self.stopping_.request_stop();
        self.configured_.set();
        self.pump_ended_.set();
    }

    // Delivers what this worker sent, then reads to the end of what the primary sent: the
    // primary answers our end of stream with its own. A process that exits with bytes unread
    // in its socket resets the connection, and the primary would see ECONNRESET instead of a
    // clean disconnect. Once disconnected, what still comes is not for us.
    io::task<void> leave() {
        (void)co_await channel().shutdown();
        (void)co_await pump_ended_.wait();
        while (auto e = co_await channel().receive_envelope()) {}
    }

    io::task<result<net::listener>> open_listener(const net::endpoint& at, net::schedule how,
                                                  const net::listener_options& o, std::string& what) {
        detail::control::listen_request ask;
        ask.endpoint = at.to_string();
        ask.schedule = static_cast<std::uint8_t>(how);
        ask.backlog = o.socket.backlog;
        ask.v6_only = static_cast<std::int8_t>(o.socket.v6_only ? (*o.socket.v6_only ? 1 : 0) : -1);
        ask.reuse_address = o.socket.reuse_address;
        ask.replace_stale_unix_socket = o.socket.replace_stale_unix_socket;
        ++listens_pending_;
        auto reply =
            co_await ipc::request<detail::control::listen_reply>(channel(), requests(), ask, detail::listen_timeout);
        --listens_pending_;
        std::shared_ptr<net::detail::listener_state> state;
        if (!reply) {
            what = "no answer from the primary";
        } else if (reply->error != 0) {
            what = std::move(reply->what);
        } else {
            auto local = net::endpoint::parse(reply->local);
            state = std::make_shared<net::detail::listener_state>(static_cast<net::detail::listener_host*>(this),
                                                                  reply->listener, how, local ? *local : at,
                                                                  std::move(reply->socket), o);
            listeners_[reply->listener] = state;
            if (stopping()) state->stop_accepting();
        }
        route_early();
        if (!reply) co_return reply.error();
        if (!state) co_return errno_code(reply->error);
        co_return net::listener(std::move(state));
    }

    // A connection the primary accepted for one of this worker's listeners. The first ones
    // may come right behind the listen reply, before the listen() that waits for it has
    // resumed: those wait for it.
    void route(detail::control::connection&& c) {
        if (!c.socket) lost_connection();
        auto it = listeners_.find(c.listener);
        if (it == listeners_.end() && listens_pending_ > 0) return early_.push_back(std::move(c));
        auto state = it == listeners_.end() ? nullptr : it->second.lock();
        if (!state) return acknowledge(c.seq, false);
        state->offer(c.seq, std::move(c.socket));
    }

    // A listen() has its answer: connections that came before it go to their listener now,
    // or, with no other listen() waiting for its answer, back to the primary.
    void route_early() {
        auto early = std::exchange(early_, {});
        for (auto& c : early) route(std::move(c));
    }

    // The kernel could not give us a handed connection: this process is at its descriptor
    // limit. Its listener refuses it, and the primary offers it elsewhere.
    void lost_connection() {
        ++overload_.connections_shed;
        log_.hit("worker " + std::to_string(id_) + ": out of descriptors: refused a connection");
    }

    // Past the bound, the oldest messages go: a worker that awaits only some types must not
    // be made to hold every other message sent to it.
    void stay_within_bound() {
        while (inbox_.queued_cost() > max_queued_bytes_ && inbox_.size() > 1) {
            (void)inbox_.evict_first([](const incoming<P>&) noexcept { return true; });
            ++overload_.events_dropped;
            log_.hit("worker " + std::to_string(id_) + ": messages queued past max_queued_bytes (" +
                     std::to_string(max_queued_bytes_) + "): dropped the oldest");
        }
    }

    static std::size_t weigh(const incoming<P>& m) noexcept {
        return sizeof(incoming<P>) + std::visit([](const auto& v) noexcept { return wire::encoded_size(v); }, m.value);
    }

    void give_back_connections() noexcept {
        for (auto& [id, weak] : listeners_)
            if (auto state = weak.lock()) state->give_back();
    }

    void stop_listeners() noexcept {
        for (auto& [id, weak] : listeners_)
            if (auto state = weak.lock()) state->stop_accepting();
    }

    void acknowledge(std::uint64_t seq, bool accepted) noexcept override {
        const detail::control::handoff_ack ack{seq, accepted};
        (void)channel().send(ack);
    }
    void report_closed(std::uint32_t listener) noexcept override {
        const detail::control::connections_closed closed{listener, 1};
        (void)channel().send(closed);
    }
    void report_unlisten(std::uint32_t listener) noexcept override {
        listeners_.erase(listener);
        const detail::control::unlisten bye{listener};
        (void)channel().send(bye);
    }

    // False once the primary has asked this worker to leave: nothing follows that.
    bool dispatch(ipc::envelope<link_protocol>&& e) {
        if (e.flags & wire::frame_flags::response) {
            (void)requests().complete(e.tag, std::move(e.value));
            return true;
        }
        if (std::holds_alternative<detail::control::disconnect>(e.value)) return false;
        if (auto* c = std::get_if<detail::control::connection>(&e.value)) {
            route(std::move(*c));
        } else if (auto* s = std::get_if<detail::control::settings>(&e.value)) {
            apply(*s);
        } else if (auto m = detail::to_incoming<P>(std::move(e), from_primary)) {
            inbox_.push(std::move(*m));
            stay_within_bound();
            count_message();
        }
        return true;
    }

    void apply(const detail::control::settings& s) {
        slot_ = s.slot;
        configured_.set();
        max_messages_ = s.max_messages;
        if (s.max_queued_bytes != 0) max_queued_bytes_ = s.max_queued_bytes;
        if (s.heartbeat_interval_ms > 0)
            background_->spawn(beat(*this, std::chrono::milliseconds(s.heartbeat_interval_ms)));
    }

    // max_messages: the primary replaces this worker (it keeps serving until disconnected).
    // Asked again after each max_messages more, in case that replacement failed (was not
    // ready in time): retried, but no faster than that, should replacements keep failing.
    void count_message() {
        if (max_messages_ != 0 && ++received_ % max_messages_ == 0) {
            const detail::control::recycle r;
            (void)channel().send(r);
        }
    }

    // Heartbeats come from the loop itself, so they stop when code blocks it (a CPU-bound
    // loop, a blocking call) and not while it only keeps the loop busy. They go on after a
    // disconnect, while main finishes its work: that worker is not hung.
    static io::task<void> beat(worker& self, std::chrono::milliseconds every) {
        const detail::control::heartbeat b;
        for (;;) {
            auto slept = co_await io::sleep_for(every);
            if (!slept) co_return;
            auto sent = co_await self.channel().send(b);
            if (!sent) co_return;
        }
    }

    unsigned id_;
    unsigned slot_ = 0;
    io::latch configured_;  // the primary's settings came, or its stream ended first
    io::mailbox<incoming<P>> inbox_{&weigh};
    std::size_t max_queued_bytes_ = detail::default_max_queued_bytes;
    overload_counts overload_;
    detail::pressure_log log_;
    std::stop_source stopping_;
    io::latch pump_ended_;             // the primary's stream has ended, or it disconnected this worker
    io::scope* background_ = nullptr;  // run()'s: the tasks that end with it
    std::uint64_t max_messages_ = 0;
    std::uint64_t received_ = 0;
    std::map<std::uint32_t, std::weak_ptr<net::detail::listener_state>> listeners_;  // by the primary's listener id
    unsigned listens_pending_ = 0;                    // listen() calls waiting for the primary's answer
    std::vector<detail::control::connection> early_;  // connections for a listener whose listen() has not resumed yet
};

}  // namespace cluster
