// cluster::primary<P>: the primary process's side of the cluster — forking workers, their
// events, requests to them, and the supervisor's controls: stop, reload, scale.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/detail/link.hpp>
#include <cluster/detail/sigpipe.hpp>
#include <cluster/detail/supervisor.hpp>
#include <cluster/error.hpp>
#include <cluster/events.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/task.hpp>
#include <cluster/options.hpp>
#include <cluster/overload.hpp>
#include <cluster/result.hpp>
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
    // (see ignore_sigpipe()).
    primary(primary_options options, worker_main main, std::vector<std::string> args = {})
        : s_(std::move(options), std::move(main), std::move(args)) {
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
        auto started = co_await s_.start_in_new_slot(std::move(o), what);
        if (!started) throw std::system_error(started.error(), what);
        co_return (*started)->handle;
    }

    // The same, with the failure as a value.
    io::task<result<handle*>> try_fork(fork_options o = {}) {
        std::string what;
        auto started = co_await s_.start_in_new_slot(std::move(o), what);
        if (!started) co_return started.error();
        co_return &(*started)->handle;
    }

    // Node's setupPrimary(): options for the workers forked from now on; a setup event follows.
    // A new restart policy starts with no restarts counted.
    void setup(primary_options o) {
        s_.options = std::move(o);
        s_.slots.set_policy(s_.options.restart);
        s_.events.report(event<P>(setup_event{s_.options}));
    }
    [[nodiscard]] const primary_options& settings() const noexcept { return s_.options; }

    // True once disconnect_all() or shutdown() began: exits from then on are expected, and
    // nothing is restarted.
    [[nodiscard]] bool stopping() const noexcept { return s_.stopping; }
    // True once the restart policy gave up on a crash loop (a gave_up event was emitted).
    [[nodiscard]] bool gave_up() const noexcept { return s_.stopper.gave_up(); }
    // How many workers the primary keeps running: scale()'s number. Counts the workers
    // forked and not retired, dead ones waiting for their restart included.
    [[nodiscard]] std::size_t target() const noexcept { return s_.slots.size(); }
    // What the primary had to shed or drop since it started (see docs/reliability.md).
    [[nodiscard]] overload_counts overload() const noexcept {
        overload_counts counts = s_.overload;
        for (const auto& [id, r] : s_.workers)
            if (r->link.channel.is_open()) counts.fds_lost += r->link.channel.fds_lost();
        return counts;
    }

    // The workers that have not exited, by id (Node's cluster.workers).
    [[nodiscard]] std::vector<handle*> workers() const {
        std::vector<handle*> out;
        for (const auto& r : s_.workers.alive()) out.push_back(&r->handle);
        return out;
    }
    // The worker with this id, until its exit event has been taken; otherwise nullptr.
    [[nodiscard]] handle* worker(unsigned id) const noexcept {
        auto r = s_.workers.find(id);
        return r ? &r->handle : nullptr;
    }

    // The slots the primary keeps filled, in increasing order: one per fork() and per worker
    // scale() added, until it is given up (see docs/supervision.md). Numbers are never reused.
    [[nodiscard]] std::vector<unsigned> slots() const { return s_.slots.ids(); }

    // The slot numbers once they differ from `known` (what slots() gave): when scale() or a
    // fork() added a slot, or one was given up. Errors: cluster_stopping once the primary is
    // stopping, operation_canceled if the awaiting task is asked to stop first.
    io::task<result<std::vector<unsigned>>> slots_changed(std::vector<unsigned> known) {
        return s_.slots_other_than(std::move(known));
    }

    // The worker serving `slot` once it is ready (online; with wait_ready, once it called
    // w.ready()) and connected: at once if it is, else when the restart policy or a reload
    // has put one there. The handle lives as long as the pointer. Errors: slot_gone once the
    // slot is given up (scale down, a removal, a worker not replaced), cluster_stopping once
    // the primary is stopping, operation_canceled if the awaiting task is asked to stop first.
    io::task<result<std::shared_ptr<handle>>> worker_in_slot(unsigned slot) {
        auto r = co_await s_.until_serving(slot);
        if (!r) co_return r.error();
        co_return detail::handle_of(*r);
    }

    // The worker serving `slot` now, as worker_in_slot() would give it without waiting; or
    // nullptr. Valid as worker(id)'s is.
    [[nodiscard]] handle* serving(unsigned slot) const noexcept {
        auto* r = s_.serving(slot);
        return r ? &r->handle : nullptr;
    }

    // The next event of any kind. Throws operation_canceled if the task is asked to stop
    // first (as by with_timeout). Taking a worker's exit event forgets its handle.
    io::task<event<P>> next_event() { return s_.events.next(); }

    // The next event of kind E (fork_event … reload_event, or incoming<P>); the others stay
    // queued for next_event().
    template <class E>
    io::task<E> next() {
        return s_.events.template next_of<E>();
    }

    // The next message that is a T, from any worker.
    template <wire::message_of<P> T>
    io::task<incoming<T>> next_message() {
        return s_.events.template next_message<T>();
    }

    // Answers a request from a worker; fails with peer_gone if that worker is gone.
    template <class M, wire::message_of<P> R>
    io::task<result<void>> reply(const incoming<M>& to, const R& response) {
        detail::check_replyable(to);
        handle* h = worker(to.from);
        if (!h || !h->is_connected()) co_return make_error_code(errc::peer_gone);
        co_return co_await h->reply(to, response);
    }

    // Disconnects every worker and waits until each has exited (Node's cluster.disconnect()).
    // Nothing is restarted from then on.
    io::task<void> disconnect_all() { return s_.stopper.disconnect_all(); }

    // The graceful stop: nothing is restarted, every worker is disconnected and gets
    // shutdown_timeout to finish its work, then the rest are SIGKILLed. A stop signal
    // starts it, and run() ends with it. A second call waits for the first.
    io::task<void> shutdown() { return s_.stopper.shutdown(); }

    // Rolling reload: replaces the workers one at a time — starts the new one, waits until it
    // is ready (online, or w.ready() with wait_ready), then gracefully retires an old one. A
    // new worker not ready within ready_timeout is killed and the reload stops there; the old
    // workers keep serving. In exec mode the new workers run the program as it is on disk now.
    // Emits a reload_event, and returns it. A caller asked to stop first (main, at a stop
    // signal) stops waiting with operation_canceled; the reload goes on.
    io::task<reload_event> reload() { return s_.rollout.reload(); }

    // Keeps n workers: forks the missing ones, or gracefully retires the extra ones (those
    // waiting for a restart first, then the oldest), and returns once they have exited.
    // Throws std::system_error if a worker cannot start. Like reload(), it goes on if the
    // caller is asked to stop first.
    io::task<void> scale(std::size_t n) { return s_.rollout.scale(n); }

    // The primary's life in run(): main, then supervision until a stop — a stop signal, a
    // shutdown(), the restart policy giving up, or, once main has returned, no worker left
    // to supervise — then shutdown(). Returns run()'s exit code (see exit_code).
    io::task<int> run(std::function<io::task<void>(primary&)> main) {
        // A coroutine: main, which may be a lambda with captures, lives in this frame.
        co_return co_await s_.stopper.run(main(*this));
    }

private:
    detail::supervisor<P> s_;
};

}  // namespace cluster
