// cluster::detail::stopper: how the primary's life in run() ends — primary_main, then
// supervision until a stop (a signal, shutdown(), the restart policy giving up, no worker
// left), then a graceful stop with a deadline — and the signals an operator sends it.
#pragma once

#include <cluster/config.hpp>

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

class supervisor;

class stopper {
public:
    explicit stopper(supervisor& s) noexcept : s_(s) {}

    // run()'s body, around primary_main's task; returns run()'s exit code.
    CLUSTER_DECL io::task<int> run(io::task<void> main);

    // The graceful stop (see primary::shutdown()); a second call waits for the first.
    CLUSTER_DECL io::task<void> shutdown();

    // Disconnects every worker and waits until each has exited; nothing restarts meanwhile.
    // Then, unless a shutdown began, the cluster can be used again: fork() starts supervised
    // workers, which listen anew (every socket closed with its last worker).
    CLUSTER_DECL io::task<void> disconnect_all();

    // The restart policy gave up on a crash loop: the cluster stops.
    CLUSTER_DECL void give_up(unsigned worker_id, std::string what);

    // A binary upgrade's successor, `pid`, serves from now on: this primary stops gracefully.
    CLUSTER_DECL void stop_for_successor(pid_t pid);

    // run() goes on from supervision to shutdown().
    void finish() noexcept { finished_.set(); }

    [[nodiscard]] bool shutdown_begun() const noexcept { return shutdown_begun_; }
    // A stop was asked for (a signal, giving up, a successor taking over), or began.
    [[nodiscard]] bool stop_requested() const noexcept { return cancel_main_.is_set() || shutdown_begun_; }
    [[nodiscard]] bool gave_up() const noexcept { return gave_up_; }

    // In a fork-mode worker, still inside fork(): run()'s signalfd is the primary's.
    CLUSTER_DECL void close_in_forked_child() const noexcept;

    // An external stop (a signal, giving up, the control socket's stop): main is cancelled and
    // the cluster shuts down.
    CLUSTER_DECL void request_stop() noexcept;

private:
    CLUSTER_DECL io::task<int> run_main(io::task<void> main);

    static CLUSTER_DECL io::task<void> stop_gracefully(stopper& self);

    static io::task<void> expire_after(std::chrono::milliseconds d) { (void)co_await io::sleep_for(d); }

    CLUSTER_DECL io::task<void> disconnect_everyone(stop_reason why);

    CLUSTER_DECL io::task<void> kill_everyone();

    template <class Record>
    static io::task<void> wait_exited(std::shared_ptr<Record> r) {
        (void)co_await r->exited.wait();
    }

    static CLUSTER_DECL io::task<void> watch_signals(stopper& self, io::signal_set& signals);

    CLUSTER_DECL void on_signal(int signo);

    CLUSTER_DECL void stop_now();

    // Stop signals that came after the stop are dropped: unblocked, they would kill us.
    static CLUSTER_DECL void drain(io::signal_set& signals);

    supervisor& s_;
    bool shutdown_begun_ = false;
    bool gave_up_ = false;
    std::string gave_up_what_;
    unsigned stop_signals_ = 0;
    unsigned disconnecting_ = 0;  // disconnect_all() calls not finished
    int signal_fd_ = -1;          // run()'s signalfd, which a fork-mode worker must not keep
    pid_t successor_ = 0;         // a binary upgrade's new primary, which this one stops for
    io::latch cancel_main_;       // a stop from outside main: main is cancelled
    io::latch finished_;          // run() goes on to shutdown()
    io::latch abort_;             // a second stop signal: shutdown() stops waiting
    io::latch shutdown_done_;
};

}  // namespace cluster::detail
