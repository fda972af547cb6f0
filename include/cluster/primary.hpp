// cluster::primary<P>: the primary process's side of the cluster — forking workers, their
// events, routing between workers and connections to them, and supervising them: restarts,
// hangs, stops, reloads, scaling.
#pragma once

#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <cluster/detail/balancer.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/detail/launch.hpp>
#include <cluster/detail/link.hpp>
#include <cluster/detail/restart_planner.hpp>
#include <cluster/events.hpp>
#include <cluster/exit_code.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/signal_set.hpp>
#include <cluster/io/sync_wait.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/when_all.hpp>
#include <cluster/options.hpp>
#include <cluster/resident_memory.hpp>
#include <cluster/restart_policy.hpp>
#include <cluster/role.hpp>
#include <cluster/worker.hpp>
#include <cluster/worker_handle.hpp>

namespace cluster {

namespace detail {

// How long a dead worker's readers get to finish what it left in its stdout and stderr
// pipes, in case a process it forked keeps them open.
inline constexpr std::chrono::milliseconds reader_grace{250};

// Ctrl-C in a terminal signals the whole process group. The primary turns it into a graceful
// stop; a worker that died of it at once would drop its work. A handler rather than SIG_IGN,
// so that what the worker execs gets the default back.
inline void ignore_interrupts() noexcept {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
}

// Several beats per timeout, so one late beat is not a hang.
inline std::chrono::milliseconds heartbeat_interval(std::chrono::milliseconds timeout) noexcept {
    return std::max(std::chrono::milliseconds(1), timeout / 4);
}

// Bytes the worker sent that the primary has not read yet.
inline bool bytes_waiting(int fd) noexcept {
    int n = 0;
    return ::ioctl(fd, FIONREAD, &n) == 0 && n > 0;
}

// The whole life of a worker process, as the process itself sees it.
template <class P>
int run_worker_process(unsigned id, unique_fd link, const typename worker<P>::main_function& main) {
    current_role() = role{true, id};
    ignore_interrupts();
    io::io_context ctx;
    worker<P> w(id, std::move(link));
    return io::sync_wait(w.run(main));
}

}  // namespace detail

template <class P>
class primary {
public:
    using protocol = P;
    using handle = worker_handle<P>;
    using worker_main = typename worker<P>::main_function;
    using clock = std::chrono::steady_clock;

    // args: the primary's own command line, which exec'd workers get by default.
    primary(primary_options options, worker_main main, std::vector<std::string> args = {})
        : options_(std::move(options)), worker_main_(std::move(main)), args_(std::move(args)),
          ctx_(&io::io_context::current_or_throw()), planner_(options_.restart), balancer_(options_) {
        (void)detail::self_exe();  // now, before anyone replaces the file: see self_exe()
        turns_.push(turn_token{});
    }
    primary(const primary&) = delete;
    primary& operator=(const primary&) = delete;
    // Tasks go first (their ops are cancelled); then each handle kills and reaps its worker.
    ~primary() = default;

    // Starts a worker and returns its handle once the process exists (its fork event is
    // queued); throws std::system_error, saying what failed, if it cannot start. The
    // worker is supervised: the restart policy replaces it if it dies.
    io::task<handle&> fork(fork_options o = {}) {
        std::string what;
        auto started = co_await start_new_slot(std::move(o), what);
        if (!started) throw std::system_error(started.error(), what);
        co_return **started;
    }

    // The same, with the failure as a value.
    io::task<result<handle*>> try_fork(fork_options o = {}) {
        std::string what;
        co_return co_await start_new_slot(std::move(o), what);
    }

    // Node's setupPrimary(): options for the workers forked from now on; a setup event follows.
    // A new restart policy starts with no restarts counted.
    void setup(primary_options o) {
        options_ = std::move(o);
        planner_ = detail::restart_planner(options_.restart);
        report(event<P>(setup_event{options_}));
    }
    [[nodiscard]] const primary_options& settings() const noexcept { return options_; }

    // True once disconnect_all() or shutdown() began: exits from then on are expected, and
    // nothing is restarted.
    [[nodiscard]] bool stopping() const noexcept { return stopping_; }
    // True once the restart policy gave up on a crash loop (a gave_up event was emitted).
    [[nodiscard]] bool gave_up() const noexcept { return gave_up_; }
    // How many workers the primary keeps running: scale()'s number. Counts the workers
    // forked and not retired, dead ones waiting for their restart included.
    [[nodiscard]] std::size_t target() const noexcept { return slots_.size(); }

    // The workers that have not exited, by id (Node's cluster.workers).
    [[nodiscard]] std::vector<handle*> workers() const {
        std::vector<handle*> out;
        for (const auto& [id, h] : handles_)
            if (!h->is_dead()) out.push_back(h.get());
        return out;
    }
    // The worker with this id, until its exit event has been taken; otherwise nullptr.
    [[nodiscard]] handle* worker(unsigned id) const noexcept {
        auto it = handles_.find(id);
        return it == handles_.end() ? nullptr : it->second.get();
    }

    // The next event of any kind. Throws operation_canceled if the task is asked to stop
    // first (as by with_timeout). Taking a worker's exit event forgets its handle.
    io::task<event<P>> next_event() {
        auto e = co_await events_.take();
        co_return taken(std::move(e));
    }

    // The next event of kind E (fork_event … reload_event, or incoming<P>); the others stay
    // queued for next_event().
    template <class E>
    io::task<E> next() {
        auto e = co_await events_.take([](const event<P>& e) noexcept { return e.template is<E>(); });
        co_return std::move(*taken(std::move(e)).template get_if<E>());
    }

    // The next message that is a T, from any worker.
    template <class T>
        requires wire::message_of<T, P>
    io::task<incoming<T>> next_message() {
        auto e = co_await events_.take([](const event<P>& e) noexcept { return e.template message<T>() != nullptr; });
        auto taken_event = taken(std::move(e));  // named: m points into it
        auto& m = *taken_event.template get_if<incoming<P>>();
        co_return incoming<T>{std::move(std::get<T>(m.value)), m.from, m.request_tag};
    }

    // Answers a request from a worker; fails with peer_gone if that worker is gone.
    template <class V, class R>
        requires wire::message_of<R, P>
    io::task<result<void>> reply(const incoming<V>& to, const R& response) {
        detail::check_replyable(to);
        handle* h = worker(to.from);
        if (!h || !h->is_connected()) co_return make_error_code(errc::peer_gone);
        co_return co_await h->reply(to, response);
    }

    // Disconnects every worker and waits until each has exited (Node's cluster.disconnect()).
    // Nothing is restarted from then on.
    io::task<void> disconnect_all() {
        balancer_.stop_accepting();
        stop_supervising();
        co_await disconnect_everyone(stop_reason::disconnect);
    }

    // The graceful stop: nothing is restarted, every worker is disconnected and gets
    // shutdown_timeout to finish its work, then the rest are SIGKILLed. A stop signal
    // starts it, and run() ends with it. A second call waits for the first.
    io::task<void> shutdown() {
        if (!shutdown_begun_) {
            shutdown_begun_ = true;
            finished_.set();
            balancer_.stop_accepting();  // first: it still has every socket, and every worker to hand connections to
            stop_supervising();
            // On the primary's own tasks, as a reload: a stop signal cancelling the main that
            // called this must not cut the workers' time short.
            tasks_.spawn(stop_gracefully(*this));
        }
        const bool done = co_await shutdown_done_.wait();
        if (!done)
            throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                                    "cluster: shutdown() wait stopped");
    }

    // Rolling reload: replaces the workers one at a time — starts the new one, waits until it
    // is ready (online, or w.ready() with wait_ready), then gracefully retires an old one. A
    // new worker not ready within ready_timeout is killed and the reload stops there; the old
    // workers keep serving. In exec mode the new workers run the program as it is on disk now.
    // Emits a reload_event, and returns it. A caller asked to stop first (main, at a stop
    // signal) stops waiting with operation_canceled; the reload goes on (see on_own()).
    io::task<reload_event> reload() { co_return co_await on_own(rolling_reload()); }

    // Keeps n workers: forks the missing ones, or gracefully retires the extra ones (those
    // waiting for a restart first, then the oldest), and returns once they have exited.
    // Throws std::system_error if a worker cannot start. Like reload(), it goes on if the
    // caller is asked to stop first.
    io::task<void> scale(std::size_t n) { (void)co_await on_own(scale_to(n)); }

    // The primary's life in run(): main, then supervision until a stop — a stop signal, a
    // shutdown(), the restart policy giving up, or, once main has returned, no worker left
    // to supervise — then shutdown(). Returns run()'s exit code (see exit_code).
    io::task<int> run(std::function<io::task<void>(primary&)> main) {
        std::optional<io::signal_set> signals;
        if (options_.handle_signals)
            signals.emplace(std::initializer_list<int>{SIGTERM, SIGINT, SIGHUP, SIGTTIN, SIGTTOU});
        io::scope watching;
        if (signals) {
            signal_fd_ = signals->native_handle();
            watching.spawn(watch_signals(*this, *signals));
        }
        const int code = co_await run_main(std::move(main));
        if (code == exit_code::failed) request_stop();  // a primary whose logic failed must not go on serving
        stop_taking_events();
        if (slots_.empty()) finished_.set();
        (void)co_await finished_.wait();
        co_await shutdown();
        watching.request_stop();
        co_await watching.join();
        if (signals) drain(*signals);
        signal_fd_ = -1;
        if (gave_up_)
            std::fprintf(stderr, "cluster: stopped: the restart policy gave up (%s)\n", gave_up_what_.c_str());
        co_return gave_up_ ? exit_code::gave_up : code;
    }

private:
    using link_protocol = detail::control::link_protocol<P>;
    using link_envelope = ipc::envelope<link_protocol>;

    // A place in the cluster that the primary keeps filled: the options it was forked with,
    // and the worker filling it (none while a restart is pending).
    struct slot_state {
        fork_options options;
        std::shared_ptr<handle> worker;
        std::stop_source pending_restart;
    };

    // Reload, scale and recycling take turns: each sees the cluster as the last one left it.
    struct turn_token {};
    class turn {
    public:
        explicit turn(io::mailbox<turn_token>* owner) noexcept : owner_(owner) {}
        turn(turn&& o) noexcept : owner_(std::exchange(o.owner_, nullptr)) {}
        turn& operator=(turn&&) = delete;
        ~turn() {
            if (owner_) owner_->push(turn_token{});
        }

    private:
        io::mailbox<turn_token>* owner_;
    };
    io::task<std::optional<turn>> take_turn() {
        auto token = co_await turns_.take();
        if (!token) co_return std::nullopt;
        co_return std::optional<turn>(std::in_place, &turns_);
    }

    struct replacement {
        bool replaced = false;
        std::string failure;  // why the new worker could not take over; empty if it did (or was not needed)
    };

    // ---- starting workers ----

    io::task<result<handle*>> start_new_slot(fork_options o, std::string& what) {
        if (shutdown_begun_) {
            what = "cluster: cannot start a worker: the primary is shutting down";
            co_return std::make_error_code(std::errc::operation_canceled);
        }
        const unsigned slot = next_slot_++;
        slots_[slot].options = std::move(o);
        auto started = co_await start(slot, what, true);
        if (!started) forget_slot(slot);
        co_return started;
    }

    // A worker for `slot`; bound to it at once, or (a reload's replacement) only once ready.
    io::task<result<handle*>> start(unsigned slot, std::string& what, bool bind_now) {
        auto it = slots_.find(slot);
        const primary_options o = merged(options_, it == slots_.end() ? fork_options{} : it->second.options);
        const unsigned id = next_id_++;
        const bool forks = o.mode == start_mode::fork;
        if (forks) balancer_.pause_accepting();
        auto started =
            detail::launch(o, args_, id, [this, id](unique_fd link) { return become_worker(id, std::move(link)); });
        if (forks) balancer_.resume_accepting();
        if (!started) {
            what = "cluster: cannot start worker " + std::to_string(id);
            co_return started.error();
        }
        auto h = std::make_shared<handle>(id, std::move(*started));
        // Listed before the wait below: a worker forked meanwhile must close these fds.
        handles_.emplace(id, h);
        std::optional<detail::launch_failure> failure;
        if (h->status_pipe_) failure = co_await read_launch_failure(h->status_pipe_.get());
        h->status_pipe_.reset();
        if (failure) {
            handles_.erase(id);
            (void)co_await h->child_.wait();
            what = "cluster: worker " + std::to_string(id) + " could not start: " + to_string(failure->stage) +
                   detail::stage_subject(failure->stage, o);
            co_return errno_code(failure->error);
        }
        h->wait_ready_ = o.wait_ready;
        h->home_slot_ = slot;
        configure(*h, o);
        tasks_.spawn(supervise(*this, h));
        if (o.heartbeat_timeout.count() > 0)
            tasks_.spawn(until_exit(h, watch_heartbeats(h, o.heartbeat_timeout, o.kill_timeout)));
        if (o.max_memory > 0)
            tasks_.spawn(until_exit(h, watch_memory(*this, h, o.max_memory, o.memory_check_interval)));
        report(event<P>(fork_event{id, h->pid()}, h));
        if (bind_now) {
            if (auto s = slots_.find(slot); s != slots_.end() && !stopping_)
                bind(slot, s->second, h);
            else
                tasks_.spawn(retire(h, stop_reason::scale_down));  // its place went away while it started
        }
        co_return h.get();
    }

    // The worker's first message: what its loop does on its own.
    void configure(handle& h, const primary_options& o) {
        detail::control::settings s;
        if (o.heartbeat_timeout.count() > 0)
            s.heartbeat_interval_ms = detail::heartbeat_interval(o.heartbeat_timeout).count();
        if (o.max_messages > 0)
            s.max_messages =
                o.max_messages + std::uniform_int_distribution<std::uint64_t>(0, o.max_messages_jitter)(rng_);
        (void)h.link_.send(s);
    }

    // Nothing once the worker started (exec'd, or ready to run its code); else what failed.
    static io::task<std::optional<detail::launch_failure>> read_launch_failure(int fd) {
        detail::launch_failure f{};
        std::size_t got = 0;
        while (got < sizeof f) {
            auto n = co_await io::read(fd, std::span(reinterpret_cast<std::byte*>(&f) + got, sizeof f - got));
            if (!n || *n == 0) break;
            got += *n;
        }
        if (got != sizeof f) co_return std::nullopt;
        co_return f;
    }

    // In a fork-mode worker, still inside fork(): close what is the primary's, then run.
    int become_worker(unsigned id, unique_fd link) {
        ::close(ctx_->native_handle());
        if (signal_fd_ >= 0) ::close(signal_fd_);
        for (const auto& [other, h] : handles_) h->close_in_forked_child();
        balancer_.close_in_forked_child();
        return detail::run_worker_process<P>(id, std::move(link), worker_main_);
    }

    // ---- slots: what the restart policy, reload and scale keep filled ----

    void bind(unsigned slot, slot_state& s, const std::shared_ptr<handle>& h) {
        s.pending_restart.request_stop();
        s.pending_restart = std::stop_source{};
        if (s.worker) s.worker->slot_ = 0;
        s.worker = h;
        h->slot_ = slot;
    }

    void forget_slot(unsigned slot) {
        balancer_.forget_slot(slot);
        if (auto it = slots_.find(slot); it != slots_.end()) {
            it->second.pending_restart.request_stop();
            if (it->second.worker) it->second.worker->slot_ = 0;
            slots_.erase(it);
        }
        if (!taking_events_ && slots_.empty()) finished_.set();
    }

    // Nothing is restarted from now on.
    void stop_supervising() {
        stopping_ = true;
        while (!slots_.empty()) forget_slot(slots_.begin()->first);
    }

    // A worker that filled a slot exited: the restart policy decides what follows.
    void after_exit(handle& h, const io::exit_status& status) {
        auto it = slots_.find(h.slot_);
        if (h.slot_ == 0 || it == slots_.end() || it->second.worker.get() != &h) return;
        it->second.worker.reset();
        // h.disconnect() is the primary's code removing this worker, as scale() would: not
        // a failure to recover from, whatever the mode.
        if (h.reason_ == stop_reason::disconnect) return forget_slot(it->first);
        plan(it->first, h.id_, status, h.exited_after_disconnect_, clock::now() - h.started_);
    }

    void plan(unsigned slot, unsigned worker_id, const io::exit_status& status, bool after_disconnect,
              clock::duration uptime) {
        if (stopping_) return forget_slot(slot);
        auto d = planner_.on_exit(status, after_disconnect, uptime, clock::now());
        switch (d.next) {
        case detail::restart_decision::action::restart:
            report(event<P>(restart_scheduled_event{worker_id, d.delay, planner_.attempt()}));
            tasks_.spawn(restart_later(*this, slot, d.delay, slots_[slot].pending_restart.get_token()));
            return;
        case detail::restart_decision::action::none: return forget_slot(slot);
        case detail::restart_decision::action::give_up:
            forget_slot(slot);
            give_up(worker_id, std::move(d.what));
            return;
        }
    }

    static io::task<void> restart_later(primary& self, unsigned slot, std::chrono::milliseconds delay,
                                        std::stop_token cancel) {
        auto slept = co_await io::sleep_for(delay).with_stop_token(cancel);
        if (!slept || self.stopping_ || !self.slots_.contains(slot)) co_return;
        std::string what;
        auto started = co_await self.start(slot, what, true);
        if (started) co_return;
        // As good as a crash at birth: the backoff and the cap apply.
        std::fprintf(stderr, "%s: %s\n", what.c_str(), started.error().message().c_str());
        if (self.slots_.contains(slot)) self.plan(slot, 0, io::exit_status{.code = 1}, false, clock::duration{});
    }

    void give_up(unsigned worker_id, std::string reason) {
        gave_up_ = true;
        gave_up_what_ = reason;
        report(event<P>(gave_up_event{worker_id, std::move(reason)}));
        request_stop();
    }

    // An external stop (a signal, giving up): run() cancels main and shuts down.
    void request_stop() {
        cancel_main_.set();
        finished_.set();
    }

    // ---- replacing, retiring, scaling ----

    // Replaces worker `id` in its slot: a new worker, ready, then the old one leaves.
    io::task<replacement> replace(unsigned id, stop_reason why) {
        auto old = find(id);
        if (!old || old->retiring_ || old->is_dead() || old->slot_ == 0 || stopping_) co_return replacement{};
        const unsigned slot = old->slot_;
        std::string what;
        auto started = co_await start(slot, what, false);
        if (!started) co_return replacement{false, what + ": " + started.error().message()};
        auto fresh = find((*started)->id());
        auto ready = co_await io::with_timeout(wait_ready(fresh), options_.ready_timeout);
        const bool is_ready = ready && *ready;
        if (!is_ready) {
            fresh->reason_ = stop_reason::not_ready;
            (void)fresh->kill(SIGKILL);
            (void)co_await fresh->exited_.wait();
            co_return replacement{
                false, "worker " + std::to_string(fresh->id()) +
                           (ready ? " exited before it was ready"
                                  : " was not ready within " + std::to_string(options_.ready_timeout.count()) + " ms")};
        }
        auto s = slots_.find(slot);
        if (stopping_ || s == slots_.end() || (s->second.worker && s->second.worker != old)) {
            // The slot went away, or a restart already filled it after the old one died.
            co_await retire(fresh, why);
            co_return replacement{};
        }
        bind(slot, s->second, fresh);
        co_await retire(old, why);
        co_return replacement{true, {}};
    }

    // True once h is ready; false if it exited first.
    static io::task<bool> wait_ready(std::shared_ptr<handle> h) {
        auto first = co_await io::when_any(wait_latch(h->ready_), wait_latch(h->exited_));
        co_return first.index() == 0;
    }

    // A graceful disconnect with shutdown_timeout to leave, then SIGKILL.
    io::task<void> retire(std::shared_ptr<handle> h, stop_reason why) {
        h->slot_ = 0;
        h->retiring_ = true;
        if (h->reason_ == stop_reason::none) h->reason_ = why;
        auto left = co_await io::with_timeout(disconnect_and_wait(h), options_.shutdown_timeout);
        if (left) co_return;
        (void)h->kill(SIGKILL);
        (void)co_await h->exited_.wait();
    }

    io::task<void> resize(std::size_t n) {
        while (slots_.size() < n) {
            fork_options defaults;
            std::string what;
            auto started = co_await start_new_slot(std::move(defaults), what);
            if (!started) throw std::system_error(started.error(), what);
        }
        std::vector<io::task<void>> leaving;
        while (slots_.size() > n) {
            const unsigned slot = extra_slot();
            auto w = slots_[slot].worker;
            forget_slot(slot);
            if (w) leaving.push_back(retire(std::move(w), stop_reason::scale_down));
        }
        (void)co_await io::when_all(std::move(leaving));
    }

    // The slot to give up when scaling down: one waiting for a restart, else the oldest worker's.
    unsigned extra_slot() const {
        unsigned oldest = 0, oldest_worker = 0;
        for (const auto& [slot, s] : slots_) {
            if (!s.worker) return slot;
            if (oldest == 0 || s.worker->id() < oldest_worker) {
                oldest = slot;
                oldest_worker = s.worker->id();
            }
        }
        return oldest;
    }

    void recycle(const std::shared_ptr<handle>& h, stop_reason why) {
        if (h->recycle_asked_ || h->retiring_ || h->slot_ == 0 || stopping_) return;
        h->recycle_asked_ = true;
        tasks_.spawn(recycle_worker(*this, h, why));
    }

    static io::task<void> recycle_worker(primary& self, std::shared_ptr<handle> h, stop_reason why) {
        auto turn = co_await self.take_turn();
        if (!turn) co_return;
        auto r = co_await self.replace(h->id(), why);
        if (!r.replaced && r.failure.empty()) co_return;  // it left meanwhile
        h->recycle_asked_ = false;                        // if it failed, a later check asks again
        reload_event out;
        out.reason = why;
        out.ok = r.failure.empty();
        out.replaced = r.replaced ? 1 : 0;
        out.what = std::move(r.failure);
        self.report(event<P>(std::move(out)));
    }

    // ---- stopping ----

    io::task<void> disconnect_everyone(stop_reason why) {
        std::vector<io::task<void>> leaving;
        for (handle* h : workers()) {
            if (h->reason_ == stop_reason::none) h->reason_ = why;
            leaving.push_back(disconnect_and_wait(find(h->id())));
        }
        (void)co_await io::when_all(std::move(leaving));
    }

    static io::task<void> stop_gracefully(primary& self) {
        auto first =
            co_await io::when_any(self.disconnect_everyone(stop_reason::shutdown),
                                  io::detail::expire_after(self.options_.shutdown_timeout), wait_latch(self.abort_));
        if (first.index() != 0) co_await self.kill_everyone();
        self.shutdown_done_.set();
    }

    io::task<void> kill_everyone() {
        std::vector<io::task<void>> dying;
        for (handle* h : workers()) {
            (void)h->kill(SIGKILL);
            dying.push_back(wait_exited(find(h->id())));
        }
        (void)co_await io::when_all(std::move(dying));
    }

    io::task<int> run_main(std::function<io::task<void>(primary&)> main) {
        try {
            auto first = co_await io::when_any(main(*this), wait_latch(cancel_main_));
            (void)first;
        } catch (const std::exception& e) {
            if (cancel_main_.is_set()) co_return exit_code::ok;  // it was stopping anyway
            std::fprintf(stderr, "cluster: primary: uncaught exception: %s\n", e.what());
            co_return exit_code::failed;
        }
        co_return exit_code::ok;
    }

    static io::task<void> watch_signals(primary& self, io::signal_set& signals) {
        for (;;) {
            auto signo = co_await signals.next();
            if (!signo) co_return;
            self.on_signal(*signo);
        }
    }

    void on_signal(int signo) {
        switch (signo) {
        case SIGTERM:
        case SIGINT:
            if (++stop_signals_ > 1) return stop_now();  // the second one: no more waiting
            return request_stop();
        case SIGHUP:
            if (!reload_queued_) {
                reload_queued_ = true;
                tasks_.spawn(reload_on_signal(*this));
            }
            return;
        case SIGTTIN: return tasks_.spawn(scale_on_signal(*this, +1));
        case SIGTTOU: return tasks_.spawn(scale_on_signal(*this, -1));
        default: return;
        }
    }

    void stop_now() {
        abort_.set();
        for (handle* h : workers()) (void)h->kill(SIGKILL);
    }

    static io::task<void> reload_on_signal(primary& self) { (void)co_await self.rolling_reload(true); }

    // Cancelled halfway, a reload or a scale would take its waits' ends for answers: a new
    // worker killed as not ready "in time", an old one SIGKILLed instead of retired. So they
    // run among the primary's own tasks, where a caller's stop does not reach them, and the
    // caller waits for the outcome (an exception included).
    template <class T>
    struct outcome {
        std::optional<T> value;
        std::exception_ptr error;
        io::latch done;
    };

    template <class T>
    io::task<T> on_own(io::task<T> t) {
        auto out = std::make_shared<outcome<T>>();
        tasks_.spawn(deliver(std::move(t), out));
        const bool finished = co_await out->done.wait();
        if (!finished)
            throw std::system_error(std::make_error_code(std::errc::operation_canceled), "cluster: wait stopped");
        if (out->error) std::rethrow_exception(out->error);
        co_return std::move(*out->value);
    }

    template <class T>
    static io::task<void> deliver(io::task<T> t, std::shared_ptr<outcome<T>> out) {
        try {
            out->value.emplace(co_await std::move(t));
        } catch (...) {
            out->error = std::current_exception();
        }
        out->done.set();
    }

    io::task<std::monostate> scale_to(std::size_t n) {
        auto turn = co_await take_turn();
        if (turn && !stopping_) co_await resize(n);
        co_return std::monostate{};
    }

    // A SIGHUP's reload, once begun, is no longer queued: another SIGHUP queues the next.
    io::task<reload_event> rolling_reload(bool by_signal = false) {
        auto turn = co_await take_turn();
        if (by_signal) reload_queued_ = false;
        reload_event out;
        if (!turn || stopping_) {
            out.ok = false;
            out.what = "the primary is stopping";
            co_return out;
        }
        std::vector<unsigned> old;
        for (const auto& [slot, s] : slots_)
            if (s.worker) old.push_back(s.worker->id());
        for (unsigned id : old) {
            auto r = co_await replace(id, stop_reason::reload);
            if (!r.failure.empty()) {
                out.ok = false;
                out.what = std::move(r.failure);
                break;
            }
            out.replaced += r.replaced ? 1 : 0;
        }
        report(event<P>(out));
        co_return out;
    }

    // SIGTTIN adds a worker, SIGTTOU removes one, never the last (as gunicorn).
    static io::task<void> scale_on_signal(primary& self, int delta) {
        auto turn = co_await self.take_turn();
        if (!turn || self.stopping_) co_return;
        const std::size_t now = self.slots_.size();
        if (delta < 0 && now <= 1) co_return;
        try {
            co_await self.resize(delta > 0 ? now + 1 : now - 1);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
        }
    }

    // Stop signals that came after the stop are dropped: unblocked, they would kill us.
    static void drain(io::signal_set& signals) {
        signalfd_siginfo info;
        while (::read(signals.native_handle(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {}
    }

    // ---- events ----

    // Once main has returned nobody takes events: they are dropped, as Node drops an event
    // nobody listens to (and a worker's handle goes at its exit).
    void report(event<P> e) {
        if (taking_events_) return events_.push(std::move(e));
        if (auto* x = e.template get_if<exit_event>()) forget(x->worker_id);
    }

    void stop_taking_events() {
        taking_events_ = false;
        while (auto e = events_.try_take()) (void)taken(std::move(e));
    }

    std::shared_ptr<handle> find(unsigned id) const {
        auto it = handles_.find(id);
        return it == handles_.end() ? nullptr : it->second;
    }

    event<P> taken(std::optional<event<P>> e) {
        if (!e)
            throw std::system_error(std::make_error_code(std::errc::operation_canceled), "cluster: event wait stopped");
        if (auto* x = e->template get_if<exit_event>()) forget(x->worker_id);
        return std::move(*e);
    }

    // Once its exit is taken, a worker's fork, online, listening and disconnect events still
    // queued are history: a loop that only takes exits must not pile them up (nor the handle
    // they hold). Its messages, and what the supervisor decided about it, stay.
    void forget(unsigned id) {
        handles_.erase(id);
        events_.erase_if([id](const event<P>& e) {
            switch (e.kind()) {
            case event_kind::fork:
            case event_kind::online:
            case event_kind::listening:
            case event_kind::disconnect: return e.worker_id() == id;
            default: return false;
            }
        });
    }

    // ---- one worker, from fork to exit ----

    // Everything the primary does for one worker, from fork to exit event.
    static io::task<void> supervise(primary& self, std::shared_ptr<handle> h) {
        h->readers_ = 1;
        self.tasks_.spawn(pump(self, h));
        if (h->out_) {
            h->readers_ += 2;
            self.tasks_.spawn(relay(h, h->out_.get(), STDOUT_FILENO));
            self.tasks_.spawn(relay(h, h->err_.get(), STDERR_FILENO));
        }
        auto status = co_await h->child_.wait();
        // All the worker sent is in our receive queue by now, but its end of the socket closes
        // only when the kernel tears its io_uring down, milliseconds later: end the stream here.
        ::shutdown(h->link_.native_handle(), SHUT_RD);
        auto drained = co_await io::with_timeout(wait_latch(h->readers_done_), detail::reader_grace);
        if (!drained) {
            // A process the worker forked holds its end: stop reading what it may still send.
            h->disconnected();
            h->stop_readers_.request_stop();
            (void)co_await h->readers_done_.wait();
        }
        h->release();
        const io::exit_status final_status = status ? *status : io::exit_status{};
        exit_event e{h->id_, h->pid(), final_status, h->exited_after_disconnect_, h->reason_};
        h->exited_.set();
        self.report(event<P>(std::move(e), h));
        self.after_exit(*h, final_status);
    }

    // A worker whose loop sends no heartbeat for `timeout` is hung: SIGTERM, then SIGKILL
    // after `grace`. Ends when the worker exits (until_exit) or its channel ends.
    static io::task<void> watch_heartbeats(std::shared_ptr<handle> h, std::chrono::milliseconds timeout,
                                           std::chrono::milliseconds grace) {
        for (;;) {
            const auto deadline = h->last_beat_ + timeout;
            if (clock::now() < deadline) {
                auto slept = co_await io::sleep_until(deadline);
                if (!slept) co_return;
            } else if (!h->is_connected()) {
                // Its channel has ended (as when it disconnected itself): no beat can come any
                // more, and it is leaving, not hung, while it finishes its work.
                co_return;
            } else if (detail::bytes_waiting(h->link_.native_handle())) {
                // We are behind, not the worker: its beats may be in what we have not read.
                auto slept = co_await io::sleep_for(detail::heartbeat_interval(timeout));
                if (!slept) co_return;
            } else {
                break;
            }
        }
        h->reason_ = stop_reason::hung;
        (void)h->kill(SIGTERM);
        auto waited = co_await io::sleep_for(grace);
        if (waited) (void)h->kill(SIGKILL);
    }

    // max_memory: the worker's resident set, every `every`; above `limit`, it is recycled.
    static io::task<void> watch_memory(primary& self, std::shared_ptr<handle> h, std::size_t limit,
                                       std::chrono::milliseconds every) {
        for (;;) {
            auto slept = co_await io::sleep_for(every);
            if (!slept) co_return;
            auto rss = resident_memory(h->pid());
            if (rss && *rss > limit) self.recycle(h, stop_reason::max_memory);
        }
    }

    static io::task<void> until_exit(std::shared_ptr<handle> h, io::task<void> t) {
        (void)co_await io::when_any(std::move(t), wait_latch(h->exited_));
    }

    static io::task<void> wait_latch(io::latch& l) { (void)co_await l.wait(); }

    static void reader_done(handle& h) {
        if (--h.readers_ == 0) h.readers_done_.set();
    }

    static io::task<void> pump(primary& self, std::shared_ptr<handle> h) {
        while (auto e = co_await h->link_.receive_envelope()) {
            if (e->flags & wire::frame_flags::routed)
                co_await self.forward(*h, std::move(*e));
            else
                self.dispatch(h, std::move(*e));
        }
        h->disconnected();
        self.balancer_.worker_gone(*h);
        self.report(event<P>(disconnect_event{h->id_, h->link_.close_reason()}, h));
        reader_done(*h);
        if (!h->disconnect_sent_ && !h->retiring_ && !self.stopping_) self.tasks_.spawn(exit_deadline(self, h));
    }

    // A worker whose channel ended without the primary asking (it disconnected itself) can
    // no longer send heartbeats; it has shutdown_timeout to exit, as one the primary
    // disconnects, or it is hung: SIGKILL. Otherwise its slot would never be filled again.
    static io::task<void> exit_deadline(primary& self, std::shared_ptr<handle> h) {
        auto exited = co_await io::with_timeout(wait_latch(h->exited_), self.options_.shutdown_timeout);
        if (exited || h->retiring_ || h->is_dead()) co_return;
        if (h->reason_ == stop_reason::none) h->reason_ = stop_reason::hung;
        (void)h->kill(SIGKILL);
    }

    void dispatch(const std::shared_ptr<handle>& h, link_envelope&& e) {
        if (e.flags & wire::frame_flags::response) {
            (void)h->requests_.complete(e.tag, std::move(e.value));
        } else if (e.value.index() >= detail::control::count) {
            if (auto m = detail::to_incoming<P>(std::move(e), h->id_)) report(event<P>(std::move(*m), h));
        } else if (auto* ask = std::get_if<detail::control::listen_request>(&e.value)) {
            listen_for(h, *ask, e.tag);
        } else {
            on_control(h, std::move(e.value));
        }
    }

    void on_control(const std::shared_ptr<handle>& h, typename link_protocol::variant&& m) {
        if (std::holds_alternative<detail::control::heartbeat>(m)) {
            h->last_beat_ = clock::now();
        } else if (std::holds_alternative<detail::control::online>(m)) {
            h->online_ = true;
            h->last_beat_ = clock::now();
            if (!h->wait_ready_) h->ready_.set();
            report(event<P>(online_event{h->id_, h->pid()}, h));
        } else if (std::holds_alternative<detail::control::ready>(m)) {
            h->ready_.set();
        } else if (std::holds_alternative<detail::control::recycle>(m)) {
            recycle(h, stop_reason::max_messages);
        } else if (auto* l = std::get_if<detail::control::listening>(&m)) {
            report(event<P>(listening_event{h->id_, l->family, std::move(l->address), l->port}, h));
        } else if (auto* ack = std::get_if<detail::control::handoff_ack>(&m)) {
            balancer_.acknowledged(*h, ack->seq, ack->accepted);
        } else if (auto* closed = std::get_if<detail::control::connections_closed>(&m)) {
            balancer_.connections_closed(*h, closed->listener, closed->count);
        } else if (auto* bye = std::get_if<detail::control::unlisten>(&m)) {
            balancer_.unlisten(*h, bye->listener);
        } else if (std::holds_alternative<detail::control::leaving>(m)) {
            h->exited_after_disconnect_ = true;
        }
    }

    // A worker's w.listen(): the balancer opens or shares the socket; a listening event follows.
    void listen_for(const std::shared_ptr<handle>& h, const detail::control::listen_request& ask, std::uint32_t tag) {
        endpoint local;
        const auto reply = balancer_.listen(h, ask, tasks_, local);
        (void)h->link_.send(reply, tag, wire::frame_flags::response);
        if (reply.error == 0)
            report(event<P>(listening_event{h->id_, local.family(), local.address(), local.port()}, h));
    }

    // A message from one worker to another (or to all others): it goes on marked with
    // the sender's id. Messages for a worker that is gone are dropped.
    io::task<void> forward(handle& from, link_envelope&& e) {
        if (e.value.index() < detail::control::count) co_return;
        std::vector<std::shared_ptr<handle>> targets;
        if (e.tag == wire::frame_flags::all_workers) {
            for (const auto& [id, h] : handles_)
                if (id != from.id_ && h->is_connected()) targets.push_back(h);
        } else if (auto h = find(e.tag); h && h->is_connected()) {
            targets.push_back(std::move(h));
        }
        for (const auto& target : targets) {
            auto sent = std::visit(
                [&](const auto& m) { return target->link_.send(m, from.id_, wire::frame_flags::routed); }, e.value);
            (void)co_await sent;
        }
    }

    static io::task<void> relay(std::shared_ptr<handle> h, int from, int to) {
        co_await relay_lines(from, to, "[worker " + std::to_string(h->id_) + "] ", h->stop_readers_.get_token());
        reader_done(*h);
    }

    // Copies lines from `from` to `to`, each prefixed; whole lines per write, so workers'
    // lines never interleave mid-line. A last line without a newline gets one.
    static io::task<void> relay_lines(int from, int to, std::string prefix, std::stop_token stop) {
        std::string partial, out;
        char buf[4096];
        for (;;) {
            auto n = co_await io::read(from, std::span(buf)).with_stop_token(stop);
            if (!n || *n == 0) break;
            partial.append(buf, *n);
            std::size_t start = 0;
            for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
                if (out.size() + prefix.size() + nl + 1 - start > 4096) co_await write_all(to, out);
                out.append(prefix).append(partial, start, nl + 1 - start);
            }
            partial.erase(0, start);
            co_await write_all(to, out);
        }
        if (!partial.empty()) out.append(prefix).append(partial).append("\n");
        co_await write_all(to, out);
    }

    static io::task<void> write_all(int fd, std::string& data) {
        std::size_t done = 0;
        while (done < data.size()) {
            auto n = co_await io::write(fd, std::span(data.data() + done, data.size() - done));
            if (!n || *n == 0) break;
            done += *n;
        }
        data.clear();
    }

    static io::task<void> disconnect_and_wait(std::shared_ptr<handle> h) {
        (void)co_await h->disconnect();
        (void)co_await h->exited_.wait();
    }

    static io::task<void> wait_exited(std::shared_ptr<handle> h) { (void)co_await h->exited_.wait(); }

    primary_options options_;
    worker_main worker_main_;
    std::vector<std::string> args_;
    io::io_context* ctx_;
    unsigned next_id_ = 1;
    unsigned next_slot_ = 1;
    bool stopping_ = false;
    bool shutdown_begun_ = false;
    bool taking_events_ = true;  // false once run()'s main has returned: events are dropped
    bool reload_queued_ = false;
    unsigned stop_signals_ = 0;
    int signal_fd_ = -1;  // run()'s signalfd, which a fork-mode worker must not keep
    bool gave_up_ = false;
    std::string gave_up_what_;
    detail::restart_planner planner_;
    std::mt19937_64 rng_{std::random_device{}()};
    std::map<unsigned, std::shared_ptr<handle>> handles_;
    std::map<unsigned, slot_state> slots_;
    io::mailbox<event<P>> events_;
    io::mailbox<turn_token> turns_;
    detail::balancer<P> balancer_;  // before tasks_: its accept loops are among them
    io::latch cancel_main_;         // a stop from outside main: main is cancelled
    io::latch finished_;            // run() goes on to shutdown()
    io::latch abort_;               // a second stop signal: shutdown() stops waiting
    io::latch shutdown_done_;
    io::scope tasks_;  // last: destroyed first, while the handles its tasks use still exist
};

}  // namespace cluster
