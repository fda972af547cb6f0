// cluster::detail::stopper's definitions, which need the whole supervisor. Inline in a header-only
// build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/detail/stopping.hpp>
#include <cluster/io/signal_name.hpp>

namespace cluster::detail {

CLUSTER_DECL io::task<int> stopper::run(io::task<void> main) {
    std::optional<io::signal_set> signals;
    if (s_.options.handle_signals)
        signals.emplace(std::initializer_list<int>{SIGTERM, SIGINT, SIGHUP, SIGTTIN, SIGTTOU, SIGUSR1, SIGUSR2});
    io::scope watching;
    if (signals) {
        signal_fd_ = signals->native_handle();
        watching.spawn(watch_signals(*this, *signals));
    }
    const int code = co_await run_main(std::move(main));
    if (code == exit_code::failed) request_stop();  // a primary whose logic failed must not go on serving
    s_.events.stop_taking();
    if (s_.slots.empty()) finish();
    (void)co_await finished_.wait();
    co_await shutdown();
    watching.request_stop();
    co_await watching.join();
    if (signals) drain(*signals);
    signal_fd_ = -1;
    if (gave_up_) std::fprintf(stderr, "cluster: stopped: the restart policy gave up (%s)\n", gave_up_what_.c_str());
    co_return gave_up_ ? exit_code::gave_up : code;
}

CLUSTER_DECL io::task<void> stopper::shutdown() {
    if (!shutdown_begun_) {
        shutdown_begun_ = true;
        s_.notifier.stopping();
        finish();
        s_.balancer.stop_accepting();  // first: it still has every socket, and every worker to hand connections to
        s_.stop_supervising();
        // Among the primary's own tasks: a stop signal cancelling the main that called this
        // must not cut the workers' time short.
        s_.tasks.spawn(stop_gracefully(*this));
    }
    const bool done = co_await shutdown_done_.wait();
    if (!done)
        throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                                "cluster: shutdown() wait stopped");
}

CLUSTER_DECL io::task<void> stopper::disconnect_all() {
    s_.balancer.stop_accepting();
    s_.stop_supervising();
    ++disconnecting_;
    co_await disconnect_everyone(stop_reason::disconnect);
    if (--disconnecting_ == 0 && !shutdown_begun_) s_.resume_supervising();
}

CLUSTER_DECL void stopper::give_up(unsigned worker_id, std::string what) {
    gave_up_ = true;
    gave_up_what_ = what;
    s_.events.report(event<erased>(gave_up_event{worker_id, std::move(what)}));
    request_stop();
}

CLUSTER_DECL void stopper::stop_for_successor(pid_t pid) {
    successor_ = pid;
    s_.notifier.hand_over(pid);
    request_stop();
}

CLUSTER_DECL void stopper::close_in_forked_child() const noexcept {
    if (signal_fd_ >= 0) ::close(signal_fd_);
}

CLUSTER_DECL void stopper::request_stop() noexcept {
    cancel_main_.set();
    finish();
}

CLUSTER_DECL io::task<int> stopper::run_main(io::task<void> main) {
    try {
        (void)co_await io::when_any(std::move(main), io::when_set(cancel_main_));
    } catch (const std::exception& e) {
        if (cancel_main_.is_set()) co_return exit_code::ok;  // it was stopping anyway
        std::fprintf(stderr, "cluster: primary: uncaught exception: %s\n", e.what());
        co_return exit_code::failed;
    }
    co_return exit_code::ok;
}

CLUSTER_DECL io::task<void> stopper::stop_gracefully(stopper& self) {
    auto first = co_await io::when_any(self.disconnect_everyone(stop_reason::shutdown),
                                       expire_after(self.s_.options.shutdown_timeout), io::when_set(self.abort_));
    if (first.index() != 0) co_await self.kill_everyone();
    self.shutdown_done_.set();
}

CLUSTER_DECL io::task<void> stopper::disconnect_everyone(stop_reason why) {
    std::vector<io::task<void>> leaving;
    for (auto& r : s_.workers.alive()) {
        if (r->reason == stop_reason::none) r->reason = why;
        r->succeeded = successor_ != 0;
        leaving.push_back(disconnect_and_wait(std::move(r)));
    }
    (void)co_await io::when_all(std::move(leaving));
}

CLUSTER_DECL io::task<void> stopper::kill_everyone() {
    std::vector<io::task<void>> dying;
    for (auto& r : s_.workers.alive()) {
        (void)r->signal(SIGKILL);
        dying.push_back(wait_exited(std::move(r)));
    }
    (void)co_await io::when_all(std::move(dying));
}

CLUSTER_DECL io::task<void> stopper::watch_signals(stopper& self, io::signal_set& signals) {
    for (;;) {
        auto signo = co_await signals.next();
        if (!signo) co_return;
        self.on_signal(*signo);
        self.s_.history.signal_taken(io::signal_name(*signo));
        self.s_.status_news.notify();
    }
}

CLUSTER_DECL void stopper::on_signal(int signo) {
    switch (signo) {
    case SIGTERM:
    case SIGINT:
        if (++stop_signals_ > 1) return stop_now();  // the second one: no more waiting
        return request_stop();
    case SIGHUP: return s_.rollout.reload_on_signal();
    case SIGTTIN: return s_.rollout.scale_on_signal(+1);
    case SIGTTOU: return s_.rollout.scale_on_signal(-1);
    case SIGUSR1: return s_.logs.reopen();
    case SIGUSR2: return s_.upgrader.upgrade_on_signal();
    default: return;
    }
}

CLUSTER_DECL void stopper::stop_now() {
    abort_.set();
    for (const auto& r : s_.workers.alive()) (void)r->signal(SIGKILL);
}

CLUSTER_DECL void stopper::drain(io::signal_set& signals) {
    signalfd_siginfo info;
    while (::read(signals.native_handle(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {}
}

}  // namespace cluster::detail
