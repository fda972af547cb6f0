// cluster::primary<P>: the primary process's side of the cluster — forking workers, their
// events, requests to them, and the supervisor's controls: stop, reload, scale.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/link.hpp>
#include <cluster/detail/primary_core.hpp>
#include <cluster/detail/sigpipe.hpp>
#include <cluster/detail/worker_process.hpp>
#include <cluster/error.hpp>
#include <cluster/events.hpp>
#include <cluster/hand_over.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/awaited_temporary.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/options.hpp>
#include <cluster/overload.hpp>
#include <cluster/result.hpp>
#include <cluster/status.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/protocol.hpp>
#include <cluster/worker.hpp>
#include <cluster/worker_handle.hpp>

namespace cluster {

template <class P>
class primary {
public:
    using protocol = P;
    using handle = worker_handle<P>;
    using worker_main = typename worker<P>::main_function;
    using clock = std::chrono::steady_clock;

    // args: the primary's own command line, which exec'd workers get by default. Needs this
    // thread's io_context. From here on a closed stdout or stderr cannot kill this process
    // (see ignore_sigpipe()), and its soft RLIMIT_NOFILE is its hard one, as in Node. Under systemd it takes
    // NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID and LISTEN_PID/FDS/FDNAMES from the environment, adopting each passed
    // socket (see docs/deployment.md); throws std::system_error, naming the fd, if one is no listening socket.
    primary(primary_options options, worker_main main, std::vector<std::string> args = {})
        : core_(std::move(options), parts(std::move(main)), std::move(args)) {
        detail::ignore_sigpipe();
    }
    primary(const primary&) = delete;
    primary& operator=(const primary&) = delete;
    // Tasks go first (their ops are cancelled); then each record kills and reaps its worker.
    ~primary() = default;

    // Starts a worker in a new slot and returns its handle once the process exists (its fork
    // event is queued); throws std::system_error, saying what failed, if it cannot start. The
    // worker is supervised: if it dies, the restart policy starts another in its slot, with
    // the same options.
    io::task<handle&> fork(fork_options o = {}) {
        std::string what;
        auto started = co_await core_.start_in_new_slot(std::move(o), what);
        if (!started) throw std::system_error(started.error(), what);
        co_return user_handle(**started);
    }

    // The same, with the failure as a value.
    io::task<result<handle*>> try_fork(fork_options o = {}) {
        std::string what;
        auto started = co_await core_.start_in_new_slot(std::move(o), what);
        if (!started) co_return started.error();
        co_return &user_handle(**started);
    }

    // Takes `fd`, a socket already listening that this process was handed (by systemd, a
    // previous binary, a parent: Node's listen({fd})), as the cluster's. A worker that listens
    // on endpoint::inherited(name), or on the address the socket is bound to, gets it, under
    // any schedule (reuseport: if it has SO_REUSEPORT). `name` defaults to the fd's number, so
    // endpoint("fd:3") names the primary's fd 3. The socket becomes close-on-exec, fork-mode
    // workers close it as they start, and the primary never shuts it down: when no worker
    // listens on it, its clients wait in its backlog for the next one. Adopt before the first
    // fork(): a worker forked earlier holds a copy. Returns the endpoint naming it; throws
    // std::system_error, naming the fd and what it is instead, if it is no listening stream
    // socket (`fd` is closed), or if the name or the address is taken already.
    net::endpoint adopt(unique_fd fd, std::string name = {}) {
        const int number = fd.get();
        std::string what;
        auto adopted = core_.adopt(std::move(fd), std::move(name), what);
        if (!adopted)
            throw std::system_error(adopted.error(),
                                    "cluster: cannot adopt fd " + std::to_string(number) + ": " + what);
        return std::move(*adopted);
    }

    // The same, with the failure as a value.
    result<net::endpoint> try_adopt(unique_fd fd, std::string name = {}) {
        std::string what;
        return core_.adopt(std::move(fd), std::move(name), what);
    }

    // The cluster is ready to serve: what systemd hears as READY=1, and what a binary
    // upgrade's old primary waits for before it lets go. Without ready_manually, the cluster
    // is ready by itself the first time every slot has a ready worker; calling this earlier
    // says so sooner. Once ready, it stays ready.
    void ready() noexcept { core_.ready(); }
    [[nodiscard]] bool is_ready() const noexcept { return core_.is_ready(); }
    // True once the cluster is ready; false if the awaiting task is asked to stop first.
    io::task<bool> until_ready() { return core_.until_ready(); }

    // Node's setupPrimary(): options for the workers forked from now on; a setup event follows.
    // A new restart policy starts with no restarts counted.
    void setup(primary_options o) { core_.setup(std::move(o)); }
    [[nodiscard]] const primary_options& settings() const noexcept { return core_.settings(); }

    // True from the start of disconnect_all() until it returns, and from shutdown() on: exits
    // meanwhile are expected, and nothing is restarted.
    [[nodiscard]] bool stopping() const noexcept { return core_.stopping(); }
    // True once the restart policy gave up on a crash loop (a gave_up event was emitted).
    [[nodiscard]] bool gave_up() const noexcept { return core_.gave_up(); }
    // How many workers the primary keeps running: scale()'s number. Counts the workers
    // forked and not retired, dead ones waiting for their restart included.
    [[nodiscard]] std::size_t target() const noexcept { return core_.target(); }
    // What the primary had to shed or drop since it started (see docs/reliability.md).
    [[nodiscard]] overload_counts overload() const noexcept { return core_.overload(); }

    // The cluster now: each live worker's state, usage and counts, and the cluster's totals
    // (which count the exited workers too, so they never go down). Reads each worker's /proc
    // files; what /metrics and the control socket show. See docs/operations.md.
    [[nodiscard]] cluster_status status() const { return core_.status(); }

    // Completes at the next change to what status() shows that makes no event: a worker's
    // heartbeat, metrics report or message arriving, as well as an exit, a restart, a reload's
    // end or a signal taken. For a task that watches status() (a dashboard, a test) without
    // polling it. Errors: operation_canceled if the awaiting task is asked to stop first.
    io::task<result<void>> status_changed() { return core_.status_changed(); }

    // Where GET /metrics is served (primary_options::metrics, with the port the kernel chose
    // for port 0); no address (empty()) when it is off.
    [[nodiscard]] net::endpoint metrics_endpoint() const { return core_.metrics_endpoint(); }

    // The workers that have not exited, by id (Node's cluster.workers).
    [[nodiscard]] std::vector<handle*> workers() const {
        std::vector<handle*> out;
        for (const auto& r : core_.alive()) out.push_back(&user_handle(*r));
        return out;
    }
    // The worker with this id, until its exit event has been taken; otherwise nullptr.
    [[nodiscard]] handle* worker(unsigned id) const noexcept {
        auto r = core_.find(id);
        return r ? &user_handle(*r) : nullptr;
    }

    // The slots the primary keeps filled, in increasing order: one per fork() and per worker
    // scale() added, until it is given up (see docs/supervision.md). Numbers are never reused.
    [[nodiscard]] std::vector<unsigned> slots() const { return core_.slots(); }

    // The slot numbers once they differ from `known` (what slots() gave): when scale() or a
    // fork() added a slot, or one was given up. Errors: cluster_stopping once the primary is
    // stopping, operation_canceled if the awaiting task is asked to stop first.
    io::task<result<std::vector<unsigned>>> slots_changed(std::vector<unsigned> known) {
        return core_.slots_changed(std::move(known));
    }

    // The worker serving `slot` once it is ready (online; with wait_ready, once it called
    // w.ready()) and connected: at once if it is, else when the restart policy or a reload
    // has put one there. The handle lives as long as the pointer. Errors: slot_gone once the
    // slot is given up (scale down, a removal, a worker not replaced), cluster_stopping once
    // the primary is stopping, operation_canceled if the awaiting task is asked to stop first.
    io::task<result<std::shared_ptr<handle>>> worker_in_slot(unsigned slot) {
        auto r = co_await core_.worker_in_slot(slot);
        if (!r) co_return r.error();
        co_return std::shared_ptr<handle>(*r, &user_handle(**r));
    }

    // The worker serving `slot` now, as worker_in_slot() would give it without waiting; or
    // nullptr. Valid as worker(id)'s is.
    [[nodiscard]] handle* serving(unsigned slot) const noexcept {
        auto* r = core_.serving(slot);
        return r ? &user_handle(*r) : nullptr;
    }

    // The next event of any kind. Throws operation_canceled if the task is asked to stop
    // first (as by with_timeout). Taking a worker's exit event forgets its handle.
    io::task<event<P>> next_event() {
        auto e = co_await core_.next_event();
        co_return typed(std::move(e));
    }

    // The next event of kind E (fork_event … reload_event, or incoming<P>); the others stay
    // queued for next_event().
    template <class E>
    io::task<E> next() {
        constexpr bool message = std::is_same_v<E, incoming<P>>;
        auto e = co_await core_.next_event([] {
            if constexpr (message)
                return event_kind::message;
            else
                return E::kind;
        }());
        if constexpr (message)
            co_return detail::unboxed<P>(std::move(*e.template get_if<incoming<detail::erased>>()));
        else
            co_return std::move(*e.template get_if<E>());
    }

    // The next message that is a T, from any worker.
    template <wire::message_of<P> T>
    io::task<incoming<T>> next_message() {
        auto e = co_await core_.next_message(P::template id<T>);
        auto& m = *e.template get_if<incoming<detail::erased>>();
        co_return incoming<T>{std::move(std::get<T>(detail::unbox<P>(m.value))), m.from, m.request_tag};
    }

    // Answers a request from a worker; fails with peer_gone if that worker is gone. An rvalue
    // (or hand_over(response)) is given away, as worker_handle::reply()'s is.
    template <class M, class R>
        requires wire::message_of<detail::message_type<R>, P>
    io::task<result<void>> reply(const incoming<M>& to, R&& response) {
        io::refuse_awaited_temporary<R>();
        detail::check_replyable(to);
        handle* h = worker(to.from);
        if (!h || !h->is_connected()) co_return make_error_code(errc::peer_gone);
        co_return co_await h->reply(to, std::forward<R>(response));
    }

    // Disconnects every worker and waits until each has exited (Node's cluster.disconnect()).
    // Nothing is restarted meanwhile. Then, as in Node, the cluster can be used again: fork()
    // starts supervised workers, and they listen anew, on any endpoint (every socket closed
    // with its last worker; adopted ones stay adopted). Unless shutdown() began meanwhile.
    io::task<void> disconnect_all() { return core_.disconnect_all(); }

    // The graceful stop: nothing is restarted, every worker is disconnected and gets
    // shutdown_timeout to finish its work, then the rest are SIGKILLed. A stop signal
    // starts it, and run() ends with it. A second call waits for the first.
    io::task<void> shutdown() { return core_.shutdown(); }

    // Rolling reload: replaces the workers one at a time — starts the new one, waits until it
    // is ready (online, or w.ready() with wait_ready), then gracefully retires an old one. A
    // new worker not ready within ready_timeout is killed and the reload stops there; the old
    // workers keep serving. In exec mode the new workers run the program as it is on disk now.
    // Emits a reload_event, and returns it. A caller asked to stop first (main, at a stop
    // signal) stops waiting with operation_canceled; the reload goes on.
    io::task<reload_event> reload() { return core_.reload(); }

    // Keeps n workers: forks the missing ones, or gracefully retires the extra ones (those
    // waiting for a restart first, then the oldest), and returns once they have exited.
    // Throws std::system_error if a worker cannot start. Like reload(), it goes on if the
    // caller is asked to stop first.
    io::task<void> scale(std::size_t n) { return core_.scale(n); }

    // The primary's life in run(): main, then supervision until a stop — a stop signal, a
    // shutdown(), the restart policy giving up, or, once main has returned, no worker left
    // to supervise — then shutdown(). Returns run()'s exit code (see exit_code).
    io::task<int> run(std::function<io::task<void>(primary&)> main) {
        // A coroutine: main, which may be a lambda with captures, lives in this frame.
        co_return co_await core_.run(main(*this));
    }

private:
    using core_event = event<detail::erased>;

    static detail::typed_parts parts(worker_main main) {
        return {
            detail::ops_of<P>,
            [](detail::worker_record& r) -> std::unique_ptr<worker_handle<detail::erased>> {
                return std::make_unique<handle>(r);
            },
            [main](unsigned id, unique_fd link) { return detail::run_worker_process<P>(id, std::move(link), main); },
            [main](unsigned id, detail::thread_end link, const std::map<std::string, std::string>& env) {
                return detail::run_worker_thread<P>(id, std::move(link), env, main);
            }};
    }

    static handle& user_handle(detail::worker_record& r) noexcept { return static_cast<handle&>(*r.handle); }

    // The machinery's event as the user's: the message, if any, as P's.
    static event<P> typed(core_event&& e) {
        auto worker = std::static_pointer_cast<handle>(e.worker_ptr());
        return std::visit(
            [&](auto&& v) {
                if constexpr (std::is_same_v<std::decay_t<decltype(v)>, incoming<detail::erased>>)
                    return event<P>(detail::unboxed<P>(std::move(v)), std::move(worker));
                else
                    return event<P>(std::move(v), std::move(worker));
            },
            std::move(e.value()));
    }

    detail::primary_core core_;
};

}  // namespace cluster
