// cluster::detail::stopper<P>: how the primary's life in run() ends — primary_main, then
// supervision until a stop (a signal, shutdown(), the restart policy giving up, no worker
// left), then a graceful stop with a deadline — and the signals an operator sends it.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/detail/worker_record.hpp>
#include <cluster/events.hpp>
#include <cluster/exit_code.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/signal_set.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/when_all.hpp>

namespace cluster::detail {

template <class P>
class supervisor;

template <class P>
class stopper {
public:
    explicit stopper(supervisor<P>& s) noexcept : s_(s) {}

    // run()'s body, around primary_main's task; returns run()'s exit code.
    io::task<int> run(io::task<void> main) {
        std::optional<io::signal_set> signals;
        if (s_.options.handle_signals)
            signals.emplace(std::initializer_list<int>{SIGTERM, SIGINT, SIGHUP, SIGTTIN, SIGTTOU});
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
        if (gave_up_)
            std::fprintf(stderr, "cluster: stopped: the restart policy gave up (%s)\n", gave_up_what_.c_str());
        co_return gave_up_ ? exit_code::gave_up : code;
    }

    // The graceful stop (see primary::shutdown()); a second call waits for the first.
    io::task<void> shutdown() {
        if (!shutdown_begun_) {
            shutdown_begun_ = true;
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

    // Disconnects every worker and waits until each has exited; nothing restarts after it.
    io::task<void> disconnect_all() {
        s_.balancer.stop_accepting();
        s_.stop_supervising();
        co_await disconnect_everyone(stop_reason::disconnect);
    }

    // The restart policy gave up on a crash loop: the cluster stops.
    void give_up(unsigned worker_id, std::string what) {
        gave_up_ = true;
        gave_up_what_ = what;
        s_.events.report(event<P>(gave_up_event{worker_id, std::move(what)}));
        request_stop();
    }

    // run() goes on from supervision to shutdown().
    void finish() noexcept { finished_.set(); }

    [[nodiscard]] bool shutdown_begun() const noexcept { return shutdown_begun_; }
    [[nodiscard]] bool gave_up() const noexcept { return gave_up_; }

    // In a fork-mode worker, still inside fork(): run()'s signalfd is the primary's.
    void close_in_forked_child() const noexcept {
        if (signal_fd_ >= 0) ::close(signal_fd_);
    }

private:
    // An external stop (a signal, giving up): main is cancelled and the cluster shuts down.
    void request_stop() noexcept {
        cancel_main_.set();
        finish();
    }

    io::task<int> run_main(io::task<void> main) {
        try {
            (void)co_await io::when_any(std::move(main), io::when_set(cancel_main_));
        } catch (const std::exception& e) {
            if (cancel_main_.is_set()) co_return exit_code::ok;  // it was stopping anyway
            std::fprintf(stderr, "cluster: primary: uncaught exception: %s\n", e.what());
            co_return exit_code::failed;
        }
        co_return exit_code::ok;
    }

    static io::task<void> stop_gracefully(stopper& self) {
        auto first = co_await io::when_any(self.disconnect_everyone(stop_reason::shutdown),
                                           expire_after(self.s_.options.shutdown_timeout), io::when_set(self.abort_));
        if (first.index() != 0) co_await self.kill_everyone();
        self.shutdown_done_.set();
    }

    static io::task<void> expire_after(std::chrono::milliseconds d) { (void)co_await io::sleep_for(d); }

    io::task<void> disconnect_everyone(stop_reason why) {
        std::vector<io::task<void>> leaving;
        for (auto& r : s_.workers.alive()) {
            if (r->reason == stop_reason::none) r->reason = why;
            leaving.push_back(disconnect_and_wait(std::move(r)));
        }
        (void)co_await io::when_all(std::move(leaving));
    }

    io::task<void> kill_everyone() {
        std::vector<io::task<void>> dying;
        for (auto& r : s_.workers.alive()) {
            (void)r->child.send_signal(SIGKILL);
            dying.push_back(wait_exited(std::move(r)));
        }
        (void)co_await io::when_all(std::move(dying));
    }

    template <class Record>
    static io::task<void> wait_exited(std::shared_ptr<Record> r) {
        (void)co_await r->exited.wait();
    }

    static io::task<void> watch_signals(stopper& self, io::signal_set& signals) {
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
        case SIGHUP: return s_.rollout.reload_on_signal();
        case SIGTTIN: return s_.rollout.scale_on_signal(+1);
        case SIGTTOU: return s_.rollout.scale_on_signal(-1);
        default: return;
        }
    }

    void stop_now() {
        abort_.set();
        for (const auto& r : s_.workers.alive()) (void)r->child.send_signal(SIGKILL);
    }

    // Stop signals that came after the stop are dropped: unblocked, they would kill us.
    static void drain(io::signal_set& signals) {
        signalfd_siginfo info;
        while (::read(signals.native_handle(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {}
    }

    supervisor<P>& s_;
    bool shutdown_begun_ = false;
    bool gave_up_ = false;
    std::string gave_up_what_;
    unsigned stop_signals_ = 0;
    int signal_fd_ = -1;     // run()'s signalfd, which a fork-mode worker must not keep
    io::latch cancel_main_;  // a stop from outside main: main is cancelled
    io::latch finished_;     // run() goes on to shutdown()
    io::latch abort_;        // a second stop signal: shutdown() stops waiting
    io::latch shutdown_done_;
};

}  // namespace cluster::detail
