// cluster::detail::supervisor: the primary's machinery — the state its jobs share (workers,
// slots, events, sockets, tasks), the jobs themselves, and the wiring between them: starting
// a worker, one worker's life from fork to exit, and the restart policy's decisions.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <stop_token>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include <cluster/detail/balancer.hpp>
#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/cluster_history.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/detail/control_commands.hpp>
#include <cluster/detail/control_server.hpp>
#include <cluster/detail/cpu_pin.hpp>
#include <cluster/detail/event_queue.hpp>
#include <cluster/detail/fd_limit.hpp>
#include <cluster/detail/launch.hpp>
#include <cluster/detail/log_file.hpp>
#include <cluster/detail/metrics_endpoint.hpp>
#include <cluster/detail/orphan_reaper.hpp>
#include <cluster/detail/output_pipe.hpp>
#include <cluster/detail/pressure_log.hpp>
#include <cluster/detail/rollout.hpp>
#include <cluster/detail/routing.hpp>
#include <cluster/detail/slot_table.hpp>
#include <cluster/detail/socket_activation.hpp>
#include <cluster/detail/status_report.hpp>
#include <cluster/detail/stdio_relay.hpp>
#include <cluster/detail/stopping.hpp>
#include <cluster/detail/systemd_notifier.hpp>
#include <cluster/detail/thread_peers.hpp>
#include <cluster/detail/typed_parts.hpp>
#include <cluster/detail/upgrade.hpp>
#include <cluster/detail/watchdogs.hpp>
#include <cluster/detail/worker_record.hpp>
#include <cluster/detail/worker_table.hpp>
#include <cluster/events.hpp>
#include <cluster/exit_code.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/transfer.hpp>
#include <cluster/metrics/aggregate.hpp>
#include <cluster/metrics/status_series.hpp>
#include <cluster/metrics/text_format.hpp>
#include <cluster/options.hpp>
#include <cluster/overload.hpp>
#include <cluster/result.hpp>
#include <cluster/status.hpp>
#include <cluster/worker_handle.hpp>

namespace cluster::detail {

// How long a dead worker's readers get to finish what it left in its stdout and stderr
// pipes, in case a process it forked keeps them open.
inline constexpr std::chrono::milliseconds reader_grace{250};

class supervisor {
public:
    using record = worker_record;
    using record_ptr = std::shared_ptr<record>;
    using clock = std::chrono::steady_clock;

    supervisor(primary_options o, typed_parts typed, std::vector<std::string> a)
        : options(std::move(o)), ops(typed.ops), make_handle(typed.make_handle),
          worker_process(std::move(typed.worker_process)), thread_main(std::move(typed.worker_thread)),
          args(std::move(a)), ctx(&io::io_context::current_or_throw()), slots(options.restart),
          balancer(options, overload) {
        (void)self_exe();  // now, before anyone replaces the file: see self_exe()
        raise_fd_limit();
        adopt_activated_sockets();
        tasks.spawn(watch_readiness(*this));
        if (notifier.enabled()) tasks.spawn(report_to_systemd(*this));
        if (notifier.watchdog_interval().count() > 0) tasks.spawn(systemd_notifier::keep_watchdog(notifier));
        upgrader.take_predecessor_link();
        if (reaps_orphans(options.reap_orphans)) {
            reaper.start();
            tasks.spawn(orphan_reaper::run(reaper));
        }
        if (!options.control.empty())
            control = std::make_unique<control_server>(options.control, commands, overload, upgrader.succeeding());
        if (options.metrics)
            exporter.start(
                *options.metrics, [this] { return metrics_page(); }, tasks);
    }
    supervisor(const supervisor&) = delete;
    supervisor& operator=(const supervisor&) = delete;

    // A worker in a new slot, which goes again if the worker cannot start.
    io::task<result<record_ptr>> start_in_new_slot(fork_options o, std::string& what) {
        if (stopper.shutdown_begun()) {
            what = "cluster: cannot start a worker: the primary is shutting down";
            co_return std::make_error_code(std::errc::operation_canceled);
        }
        const unsigned slot = slots.add(std::move(o));
        auto started = co_await start(slot, what, true);
        if (!started) forget_slot(slot);
        co_return started;
    }

    // A worker for `slot`: bound to it at once, or (a reload's replacement) only once ready.
    io::task<result<record_ptr>> start(unsigned slot, std::string& what, bool bind_now) {
        const fork_options* in_slot = slots.options(slot);
        const primary_options o = merged(options, in_slot ? *in_slot : fork_options{});
        auto launched = launch_worker(o, slot, what);
        if (!launched) co_return launched.error();
        auto r = std::move(*launched);
        // Listed before the wait below: a worker forked meanwhile must close these fds.
        workers.add(r);
        if (auto failed = co_await setup_failure(*r, o, what)) {
            workers.erase(r->id);
            co_return failed;
        }
        r->wait_ready = o.wait_ready;
        r->home_slot = slot;
        configure(*r, o);
        // Reported before its link is read: a thread may have said online already.
        events.report(event<erased>(fork_event{r->id, r->pid, slot}, handle_of(r)));
        watch(r, o);
        if (bind_now) settle_in(slot, r);
        co_return r;
    }

    // `r` fills `slot` from now on.
    void bind(unsigned slot, const record_ptr& r) { slots.bind(slot, r->id); }

    // The slot is no longer kept: nothing restarts there, and its reuseport sockets go.
    void forget_slot(unsigned slot) {
        balancer.forget_slot(slot);
        slots.forget(slot);
        if (!events.taking() && slots.empty()) stopper.finish();
    }

    // Nothing is restarted from now on.
    void stop_supervising() {
        stopping = true;
        for (unsigned slot : slots.ids()) forget_slot(slot);
        slots.notify();
    }

    // After disconnect_all(): the cluster, with no worker left, starts and supervises them again.
    void resume_supervising() {
        stopping = false;
        slots.notify();
    }

    // The worker filling `slot` if it is ready and connected; else none.
    [[nodiscard]] record* serving(unsigned slot) const noexcept {
        if (stopping) return nullptr;
        auto* r = workers.get(slots.worker(slot));
        return r && r->ready.is_set() && r->is_connected() ? r : nullptr;
    }

    // The same, once there is one; slot_gone once the slot is given up, cluster_stopping once
    // the primary is stopping.
    io::task<result<record_ptr>> until_serving(unsigned slot) {
        for (;;) {
            if (stopping) co_return make_error_code(errc::cluster_stopping);
            if (!slots.contains(slot)) co_return make_error_code(errc::slot_gone);
            if (serving(slot)) co_return workers.find(slots.worker(slot));
            auto changed = co_await slots.next_change();
            if (!changed) co_return std::make_error_code(std::errc::operation_canceled);
        }
    }

    // The slot numbers once they are no longer `known`; cluster_stopping once the primary is stopping.
    io::task<result<std::vector<unsigned>>> slots_other_than(std::vector<unsigned> known) {
        std::sort(known.begin(), known.end());
        for (;;) {
            if (stopping) co_return make_error_code(errc::cluster_stopping);
            auto now = slots.ids();
            if (now != known) co_return now;
            auto changed = co_await slots.next_change();
            if (!changed) co_return std::make_error_code(std::errc::operation_canceled);
        }
    }

    // The cluster is ready the first time every slot has a ready worker (unless the primary's
    // code says when). A slot is added before its worker's fork, so a ready worker never
    // makes the cluster ready while primary_main is still inside a fork().
    static io::task<void> watch_readiness(supervisor& self) {
        while (!self.cluster_ready.is_set()) {
            if (!self.options.ready_manually && self.every_slot_serving()) {
                self.cluster_ready.set();
                co_return;
            }
            auto changed = co_await self.slots.next_change();
            if (!changed) co_return;
        }
    }

    // What systemd hears, with NOTIFY_SOCKET: READY=1 once the cluster is ready, then a
    // STATUS= each time a slot's change changes it (reloads and the stop say their own).
    static io::task<void> report_to_systemd(supervisor& self) {
        const bool ready = co_await self.cluster_ready.wait();
        if (!ready || self.stopper.shutdown_begun()) co_return;
        self.notifier.ready(self.status());
        for (;;) {
            auto changed = co_await self.slots.next_change();
            if (!changed || self.stopper.shutdown_begun()) co_return;
            self.notifier.status(self.status());
        }
    }

    [[nodiscard]] service_status status() const {
        const auto ids = slots.ids();
        service_status s;
        s.workers = static_cast<std::size_t>(
            std::count_if(ids.begin(), ids.end(), [this](unsigned slot) { return serving(slot) != nullptr; }));
        s.restarts = history.restarts();
        std::tie(s.reloaded, s.reloading) = rollout.reload_progress();
        s.stopping = stopper.shutdown_begun();
        return s;
    }
    // The cluster as it is now (see primary<P>::status()).
    [[nodiscard]] cluster_status report() const { return status_report(*this); }

    // What GET /metrics answers: the built-in series, then the application's.
    [[nodiscard]] std::string metrics_page() const {
        std::string page;
        metrics::text_writer w(page);
        metrics::write_status(w, report());
        app_metrics.render(w);
        return page;
    }

    // Whether `pid` is a child of the primary's own — a worker, or anything else started
    // through an io::child_process it holds — whose handle takes its exit status; the
    // orphan reaper leaves those alone.
    [[nodiscard]] static bool owns_child(pid_t pid) { return io::child_process::held(pid); }

    [[nodiscard]] bool every_slot_serving() const {
        const auto ids = slots.ids();
        return !ids.empty() && std::all_of(ids.begin(), ids.end(), [this](unsigned s) { return serving(s); });
    }

    // What a binary upgrade's successor finds in its environment besides its sockets: the
    // systemd variables this primary took out of its own, for the successor to take over.
    [[nodiscard]] std::map<std::string, std::string> successor_environment() const {
        std::map<std::string, std::string> env;
        if (!notifier.socket().empty()) env[notify_socket_env] = notifier.socket();
        if (!notifier.watchdog_usec().empty()) env[watchdog_usec_env] = notifier.watchdog_usec();
        return env;
    }

    // This primary, a binary upgrade's successor, is ready: systemd hears that it is the
    // service's main process now (its predecessor says so too, which systemd accepts
    // whatever NotifyAccess says); clusterctl reaches it from now on.
    void successor_ready() {
        notifier.main_pid(::getpid());
        if (!control) return;
        if (auto taken = control->take_path(); !taken)
            std::fprintf(stderr, "cluster: control socket %s: cannot take it over: %s\n", options.control.c_str(),
                         taken.error().message().c_str());
    }

    // ---- the state every job shares ----
    primary_options options;
    log_file logs{options.log};  // first: what the primary says from now on goes there
    const protocol_ops ops;
    std::unique_ptr<worker_handle<erased>> (*const make_handle)(record&);
    const std::function<int(unsigned id, unique_fd link)> worker_process;
    const decltype(typed_parts::worker_thread) thread_main;
    const std::vector<std::string> args;
    io::io_context* const ctx;
    overload_counts overload;  // what the primary shed or dropped; fds_lost: of the workers gone
    worker_table workers;
    std::vector<int> siblings_fds;  // see gather_siblings_fds()
    // The thread workers' links, which they send to one another on (see thread_peers).
    std::shared_ptr<thread_peers> thread_workers = std::make_shared<thread_peers>();
    event_queue events{workers, overload, options.max_queued_bytes};
    slot_table slots;
    detail::balancer balancer;  // before tasks: its accept loops are among them
    bool stopping = false;      // once disconnect_all() or shutdown() began: nothing restarts
    io::latch cluster_ready;    // see watch_readiness(); set once, never cleared
    cluster_history history;    // what ended workers counted, exits, restarts, reloads
    // Notified at each change status() shows that has no event of its own: a worker's
    // heartbeat, report or message, an exit, a restart, a reload's end, a signal taken.
    io::detail::notice status_news;
    // Read, and taken from the environment, as the primary starts: no worker inherits them.
    systemd_notifier notifier = systemd_notifier::from_environment();
    std::mt19937_64 rng{std::random_device{}()};
    metrics_endpoint exporter{overload};  // before tasks: its accept loop and scrapes are among them
    // The workers' own metrics, written on the /metrics page after the built-in series.
    metrics::aggregate app_metrics;  // what the workers' metrics_reports say, combined
    pressure_log metrics_log;        // reports refused, families skipped: a line a second at most

    // ---- the jobs ----
    detail::rollout rollout{*this};
    detail::router router{*this};
    detail::stopper stopper{*this};
    detail::upgrader upgrader{*this};
    orphan_reaper reaper{[](pid_t pid) { return owns_child(pid); }};
    control_commands commands{*this};
    std::unique_ptr<control_server> control;  // with primary_options::control

    io::scope tasks;  // last: destroyed first, while everything its tasks use still exists

private:
    // Socket activation: each socket systemd passed becomes the cluster's, as adopt() would
    // make it, named by LISTEN_FDNAMES or its fd number. One that is not a listening stream
    // socket stops the primary from starting (see docs/deployment.md): every socket left is
    // closed, and the error names the fd, its name and what it is instead.
    void adopt_activated_sockets() {
        std::string what;
        auto passed = take_listen_fds(what);
        if (!passed) throw std::system_error(passed.error(), "cluster: socket activation: " + what);
        for (std::size_t i = 0; i < passed->size(); ++i) {
            auto& [fd, name] = (*passed)[i];
            const std::string named = name.empty() ? "" : " (\"" + name + "\")";
            auto adopted = balancer.adopt(unique_fd(fd), name, what);
            if (adopted) continue;
            for (std::size_t rest = i + 1; rest < passed->size(); ++rest) ::close((*passed)[rest].fd);
            throw std::system_error(adopted.error(), "cluster: socket activation: LISTEN_FDS fd " + std::to_string(fd) +
                                                         named + ": " + what);
        }
    }

    result<record_ptr> launch_worker(const primary_options& o, unsigned slot, std::string& what) {
        if (o.mode == start_mode::thread) return launch_thread(o, slot, what);
        const unsigned id = workers.next_id();
        if (o.mode == start_mode::fork && threads_running()) {
            what = "cluster: cannot start worker " + std::to_string(id) +
                   " in fork mode while thread workers run: fork() copies only the calling thread, "
                   "and theirs would be half there; start process workers beside threads in exec mode";
            return std::make_error_code(std::errc::invalid_argument);
        }
        if (!chosen_stdio(o)) {
            what = "cluster: cannot start worker " + std::to_string(id) +
                   ": silent and stdio are both set (silent is stdio {relay, relay}): set one";
            return std::make_error_code(std::errc::invalid_argument);
        }
        const bool forks = o.mode == start_mode::fork;
        if (forks) {
            pause_accepting();
            gather_siblings_fds();
        }
        const auto pin = o.cpu_affinity ? cpu_for(slot) : std::nullopt;
        auto started =
            launch(o, args, id, pin, [this, id](unique_fd link) { return become_worker(id, std::move(link)); });
        if (forks) resume_accepting();
        if (!started) {
            what = "cluster: cannot start worker " + std::to_string(id);
            if (started.error() == std::errc::too_many_files_open) what += fd_limit_note();
            return started.error();
        }
        auto r = std::make_shared<record>(id, std::move(*started));
        r->handle = make_handle(*r);
        return r;
    }

    // A thread worker: its own thread, loop and link; the process, and its output, the primary's.
    result<record_ptr> launch_thread(const primary_options& o, unsigned slot, std::string& what) {
        const unsigned id = workers.next_id();
        if (const char* refused = thread_refusal(o)) {
            what = "cluster: cannot start worker " + std::to_string(id) + " as a thread: " + refused;
            return std::make_error_code(std::errc::invalid_argument);
        }
        auto [mine, theirs] = make_thread_link(ipc::channel_options{}.high_water_mark);
        theirs.peers = thread_workers;
        theirs.worker_id = id;
        thread_workers->add(id, mine.shared);
        // sched_setaffinity(0) pins the calling thread: the worker's own, as it starts.
        auto pin = o.cpu_affinity ? cpu_for(slot) : std::nullopt;
        const std::string pin_warning = pin ? pin->warning_for(id) : std::string();
        auto pinned = pin ? std::make_shared<const cpu_pin>(std::move(*pin)) : nullptr;
        auto started = worker_thread::start(
            [run = thread_main, id, end = std::move(theirs), pinned, pin_warning, env = o.env]() mutable {
                if (const int failed = pinned ? pinned->apply() : 0) cpu_pin::warn(pin_warning, failed);
                return run(id, std::move(end), env);
            });
        if (!started) {
            what = "cluster: cannot start worker " + std::to_string(id) + " as a thread";
            return started.error();
        }
        auto r = std::make_shared<record>(id, std::move(mine), std::move(*started));
        r->handle = make_handle(*r);
        return r;
    }

    [[nodiscard]] bool threads_running() const {
        for (const auto& [id, r] : workers)
            if (r->is_thread() && !r->is_dead()) return true;
        return false;
    }

    // cpu_affinity: the CPU of `slot`'s workers; none, and said, if the primary's own CPUs
    // cannot be read.
    static std::optional<cpu_pin> cpu_for(unsigned slot) {
        auto pin = cpu_pin::for_slot(slot);
        if (!pin)
            std::fprintf(stderr,
                         "cluster: cpu_affinity: cannot read the primary's CPUs: slot %u's worker runs unpinned\n",
                         slot);
        return pin;
    }

    // Around a fork-mode worker's fork(): every connection accepted by then is one the
    // child knows to close (see acceptor::pause()).
    void pause_accepting() {
        balancer.pause_accepting();
        exporter.pause();
        if (control) control->pause_accepting();
    }
    void resume_accepting() {
        balancer.resume_accepting();
        exporter.resume();
        if (control) control->resume_accepting();
    }

    // Nothing once the worker started (exec'd, or ready to run its code); else what failed in
    // the child's setup, once the child is reaped.
    io::task<std::error_code> setup_failure(record& r, const primary_options& o, std::string& what) {
        if (!r.status_pipe) co_return std::error_code{};
        launch_failure f{};
        auto reported = co_await io::read_exact(r.status_pipe.get(), std::as_writable_bytes(std::span(&f, 1)));
        r.status_pipe.reset();
        if (!reported) co_return std::error_code{};
        (void)co_await r.child.wait();
        what = "cluster: worker " + std::to_string(r.id) + " could not start: " + to_string(f.stage) +
               stage_subject(f.stage, o);
        co_return errno_code(f.error);
    }

    // The worker's first message: what its loop does on its own.
    void configure(record& r, const primary_options& o) {
        control::settings s;
        s.slot = r.home_slot;
        s.max_queued_bytes = o.max_queued_bytes;
        if (o.heartbeat_timeout.count() > 0) s.heartbeat_interval_ms = heartbeat_interval(o.heartbeat_timeout).count();
        if (o.max_messages > 0)
            s.max_messages =
                o.max_messages + std::uniform_int_distribution<std::uint64_t>(0, o.max_messages_jitter)(rng);
        (void)r.link.send(s);
    }

    void watch(const record_ptr& r, const primary_options& o) {
        tasks.spawn(live(*this, r));
        if (o.heartbeat_timeout.count() > 0 && r->is_thread())
            tasks.spawn(until_exit(r, watch_thread(*this, r, o.heartbeat_timeout)));
        else if (o.heartbeat_timeout.count() > 0)
            tasks.spawn(until_exit(r, watch_heartbeats(r, o.heartbeat_timeout, o.kill_timeout)));
        // A thread worker's resident set is the whole process's, which replacing it would not
        // shrink: max_memory is a process's limit (docs/threads.md).
        if (o.max_memory > 0 && !r->is_thread()) {
            auto recycle = [this](const record_ptr& over) { rollout.recycle(over, stop_reason::max_memory); };
            tasks.spawn(until_exit(r, watch_memory(r, o.max_memory, o.memory_check_interval, std::move(recycle))));
        }
    }

    // A started worker takes its slot, unless the slot went away while it started.
    void settle_in(unsigned slot, const record_ptr& r) {
        if (slots.contains(slot) && !stopping)
            bind(slot, r);
        else
            tasks.spawn(rollout.retire(r, stop_reason::scale_down));
    }

    // What a worker forked next must close of the primary's descriptors for the others, listed
    // here, where their records are warm: a fresh child that read each record touched its pages
    // for the first time, at 14 µs a record on a 2-vCPU VM (3.3 ms of CPU a child at 230
    // workers, most of what made the time to all online grow faster than the workers).
    void gather_siblings_fds() {
        siblings_fds.clear();
        for (const auto& [other, r] : workers) r->fds_for_forked_sibling(siblings_fds);
    }

    // In a fork-mode worker, still inside fork(): close what is the primary's (its ring was
    // closed as the child began), then run.
    int become_worker(unsigned id, unique_fd link) {
        stopper.close_in_forked_child();
        reaper.close_in_forked_child();
        for (int fd : siblings_fds) ::close(fd);
        balancer.close_in_forked_child();
        exporter.close_in_forked_child();
        if (control) control->close_in_forked_child();
        return worker_process(id, std::move(link));
    }

    // A thread worker that misses its heartbeats cannot be killed and replaced: the action
    // the options name is taken (see docs/threads.md).
    static io::task<void> watch_thread(supervisor& self, record_ptr r, std::chrono::milliseconds timeout) {
        const bool hung = co_await until_hung(r, timeout);
        if (!hung) co_return;
        r->reason = stop_reason::hung;
        const std::string what = "worker " + std::to_string(r->id) + " is a thread that sent no heartbeat for " +
                                 std::to_string(timeout.count()) +
                                 " ms; a thread cannot be killed, so the cluster stops for its own supervisor "
                                 "to start the process again";
        if (self.options.hung_thread == hung_thread_action::abort) {
            std::fprintf(stderr, "cluster: %s: aborting\n", what.c_str());
            std::abort();
        }
        std::fprintf(stderr, "cluster: %s\n", what.c_str());
        self.stopper.give_up(r->id, what);
    }

    // Everything the primary does for one worker, from fork to exit event.
    static io::task<void> live(supervisor& self, record_ptr r) {
        self.start_readers(r);
        auto status = co_await r->wait_exit();
        r->drain_output();
        // All the worker sent is in our receive queue by now, but its end of the socket closes
        // only when the kernel tears its io_uring down, milliseconds later: end the stream here.
        // A thread's end closed as its code returned; one abandoned never will.
        if (!r->is_thread())
            ::shutdown(r->link.native_handle(), SHUT_RD);
        else if (r->thread->abandoned())
            r->link.cut();
        auto drained = co_await io::with_timeout(io::when_set(r->readers_done), reader_grace);
        if (!drained) {
            // A process the worker forked holds its end: stop reading what it may still send.
            r->end_link();
            r->stop_readers.request_stop();
            (void)co_await r->readers_done.wait();
        }
        r->release();
        const io::exit_status final_status = status ? *status : io::exit_status{};
        exit_event e{r->id, r->pid, final_status, r->exited_after_disconnect, r->reason, r->home_slot, r->failure()};
        self.history.worker_exited(counts_of(*r), r->reason, final_status);
        self.status_news.notify();
        self.app_metrics.retire(r->id);
        r->in_history = true;
        r->exited.set();
        self.events.report(event<erased>(std::move(e), handle_of(r)));
        self.after_exit(*r, final_status);
    }

    void start_readers(const record_ptr& r) {
        r->readers = 1;
        tasks.spawn(router.pump(r));
        read_output(r, stdio_stream::out);
        read_output(r, stdio_stream::err);
    }

    // The worker's stdout or stderr, when it comes to the primary: relayed to the primary's
    // own, or queued for the primary's code.
    void read_output(const record_ptr& r, stdio_stream s) {
        const int from = r->output_fd(s);
        if (from < 0) return;
        ++r->readers;
        if (r->output_mode_of(s) == output_mode::relay) {
            const int to = s == stdio_stream::out ? STDOUT_FILENO : STDERR_FILENO;
            log_tap* tap = control ? &commands.logs() : nullptr;
            tasks.spawn(relay(r, from, to, options.log.format, line_source{r->id, r->home_slot, r->pid, s}, tap));
            return;
        }
        auto& q = r->piped(s);
        q = std::make_shared<output_queue>(r->id, r->home_slot, s, r->stdio.max_unread, pipe_capacity(from));
        tasks.spawn(pipe(r, from, q));
    }

    static io::task<void> relay(record_ptr r, int from, int to, log_format format, line_source source, log_tap* tap) {
        co_await relay_lines(from, to, format, source, r->stop_readers.get_token(), tap);
        r->reader_finished();
    }

    static io::task<void> pipe(record_ptr r, int from, std::shared_ptr<output_queue> q) {
        co_await pipe_lines(from, *q).with_stop_token(r->stop_readers.get_token());
        r->reader_finished();
    }

    // ---- restarts ----

    // A worker that filled a slot exited: the restart policy decides what follows.
    void after_exit(const record& r, const io::exit_status& status) {
        const unsigned slot = slots.slot_of(r.id);
        if (slot == 0) return;
        slots.vacate(slot);
        // r.disconnect() is the primary's code removing this worker, as scale() would: not
        // a failure to recover from, whatever the mode.
        if (r.reason == stop_reason::disconnect) return forget_slot(slot);
        const auto now = clock::now();
        worker_exit e{slot, status, r.exited_after_disconnect, now - r.started, std::nullopt};
        if (r.online) e.online_for = now - r.online_at;
        plan(r.id, e);
    }

    void plan(unsigned worker_id, const worker_exit& e) {
        if (stopping) return forget_slot(e.slot);
        auto d = slots.decide(e, clock::now());
        switch (d.next) {
        case restart_decision::action::restart:
            history.restarted(e.slot);
            status_news.notify();
            events.report(event<erased>(restart_scheduled_event{worker_id, d.delay, slots.attempt(), e.slot}));
            tasks.spawn(restart_later(*this, e.slot, d.delay, slots.pending_restart(e.slot)));
            return;
        case restart_decision::action::none: return forget_slot(e.slot);
        case restart_decision::action::give_up:
            forget_slot(e.slot);
            stopper.give_up(worker_id, std::move(d.what));
            return;
        }
    }

    static io::task<void> restart_later(supervisor& self, unsigned slot, std::chrono::milliseconds delay,
                                        std::stop_token cancel) {
        auto slept = co_await io::sleep_for(delay).with_stop_token(cancel);
        if (!slept || self.stopping || !self.slots.contains(slot)) co_return;
        std::string what;
        auto started = co_await self.start(slot, what, true);
        if (started) co_return;
        // As good as a crash at birth: the backoff and the cap apply. Unless the primary is
        // out of descriptors or memory for the worker's channel and pipes: that is load, and
        // counts as the worker's own exhaustion would.
        std::fprintf(stderr, "%s: %s\n", what.c_str(), started.error().message().c_str());
        const bool exhausted =
            started.error().category() == std::system_category() && out_of_resources(started.error().value());
        const io::exit_status as_if{.code = exhausted ? exit_code::out_of_resources : 1};
        if (self.slots.contains(slot)) self.plan(0, worker_exit{slot, as_if, false, {}, std::nullopt});
    }
};

}  // namespace cluster::detail

// What the supervisor's jobs do: they need the whole supervisor.
#include <cluster/detail/impl/control_commands.ipp>
#include <cluster/detail/impl/rollout.ipp>
#include <cluster/detail/impl/routing.ipp>
#include <cluster/detail/impl/status_report.ipp>
#include <cluster/detail/impl/stopping.ipp>
#include <cluster/detail/impl/upgrade.ipp>
