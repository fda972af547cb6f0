// cluster::detail::worker_record: what the primary keeps about one worker — its link, its
// process and stdio pipes or its thread, where it stands, what its supervisor decided — and
// the worker_handle through which the user sees it.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/detail/launch.hpp>
#include <cluster/detail/link.hpp>
#include <cluster/detail/output_pipe.hpp>
#include <cluster/detail/thread_link.hpp>
#include <cluster/detail/worker_thread.hpp>
#include <cluster/error.hpp>
#include <cluster/events.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/task.hpp>
#include <cluster/leave_reason.hpp>
#include <cluster/options.hpp>
#include <cluster/output_line.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster {

template <class P>
class worker_handle;

// What every worker_handle<P> is to the supervisor, which is the same code whatever P is.
template <>
class worker_handle<detail::erased> {
public:
    worker_handle() = default;
    worker_handle(const worker_handle&) = delete;
    worker_handle& operator=(const worker_handle&) = delete;
    virtual ~worker_handle() = default;
};

}  // namespace cluster

namespace cluster::detail {

struct worker_record {
    using clock = std::chrono::steady_clock;

    worker_record(unsigned worker_id, launched&& process)
        : id(worker_id), pid(process.child.pid()), link(std::move(process.link)), child(std::move(process.child)),
          stdio(process.stdio), out(std::move(process.out)), err(std::move(process.err)),
          status_pipe(std::move(process.status)) {}
    // A thread worker: the process is the primary's own, its output the primary's too.
    worker_record(unsigned worker_id, thread_end end, std::unique_ptr<worker_thread> t)
        : id(worker_id), pid(::getpid()), link(std::move(end)), stdio(), thread(std::move(t)) {}
    worker_record(const worker_record&) = delete;
    worker_record& operator=(const worker_record&) = delete;

    // Asks the worker to leave and waits until its side of the link has ended: its
    // receive() ends, its code finishes, and it exits.
    io::task<result<void>> disconnect() {
        if (link_ended.is_set()) co_return result<void>{};
        if (reason == stop_reason::none) reason = stop_reason::disconnect;
        exited_after_disconnect = true;
        if (!disconnect_sent) {
            disconnect_sent = true;
            // Queued without waiting for the socket to drain: a worker that reads nothing must
            // not hold this up (shutdown()'s deadline is what deals with it). If the worker is
            // already gone, the wait below ends all the same.
            const control::disconnect leave{static_cast<std::uint8_t>(leaving_as())};
            (void)link.send(leave);
        }
        (void)co_await link_ended.wait();
        co_return result<void>{};
    }

    // What the worker is told of its leaving: replaced when another takes its place.
    [[nodiscard]] leave_reason leaving_as() const noexcept {
        switch (reason) {
        case stop_reason::hung:
        case stop_reason::not_ready:
        case stop_reason::reload:
        case stop_reason::max_messages:
        case stop_reason::max_memory: return leave_reason::replaced;
        case stop_reason::none:
        case stop_reason::disconnect:
        case stop_reason::scale_down:
        case stop_reason::shutdown: break;
        }
        return succeeded ? leave_reason::replaced : leave_reason::going_away;
    }

    // The worker's side of the link is done: stop talking to it, both ways.
    void end_link() {
        link.cut();
        link.requests.fail_all(make_error_code(errc::peer_gone));
        link_ended.set();
    }

    // The worker has exited and everything it sent was read: its descriptors go now, not
    // when the last event about it does. Later sends fail with channel_closed, kill() with ESRCH.
    void release() {
        link.close();
        child.detach();
        if (thread) thread->release();
        out.reset();
        err.reset();
    }

    // The primary's descriptors for this worker, which a sibling forked now must close.
    void fds_for_forked_sibling(std::vector<int>& fds) const {
        link.owned_queued_fds(fds);
        for (int fd : {link.native_handle(), child.pidfd(), out.get(), err.get(), status_pipe.get()})
            if (fd >= 0) fds.push_back(fd);
    }

    // The worker's stdout or stderr as the primary reads it: relayed or piped; else -1.
    [[nodiscard]] int output_fd(stdio_stream s) const noexcept { return (s == stdio_stream::out ? out : err).get(); }
    [[nodiscard]] output_mode output_mode_of(stdio_stream s) const noexcept {
        return s == stdio_stream::out ? stdio.out : stdio.err;
    }
    [[nodiscard]] std::shared_ptr<output_queue>& piped(stdio_stream s) noexcept {
        return piped_[static_cast<std::size_t>(s)];
    }

    // The lines of a piped stream, for worker_handle::output(); throws if it is not piped.
    [[nodiscard]] std::shared_ptr<output_queue> piped_output(stdio_stream s) const {
        const auto& q = piped_[static_cast<std::size_t>(s)];
        if (!q)
            throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                    "cluster: worker " + std::to_string(id) + "'s " + to_string(s) +
                                        " is not piped to the primary (its output_mode is " +
                                        to_string(output_mode_of(s)) + ")");
        return q;
    }

    // The worker has exited: what it left in its piped streams is read whatever their bound.
    void drain_output() noexcept {
        for (const auto& q : piped_)
            if (q) q->worker_exited();
    }

    // One of the tasks reading from the worker is done.
    void reader_finished() noexcept {
        if (--readers == 0) readers_done.set();
    }

    [[nodiscard]] bool is_connected() const noexcept { return !link_ended.is_set(); }
    [[nodiscard]] bool is_dead() const noexcept { return exit_status().has_value(); }
    [[nodiscard]] bool is_thread() const noexcept { return thread != nullptr; }

    // The worker's end: its process's, reaped, or its thread's, returned (or abandoned).
    io::task<result<io::exit_status>> wait_exit() { return thread ? thread->wait() : child.wait(); }
    [[nodiscard]] const std::optional<io::exit_status>& exit_status() const noexcept {
        return thread ? thread->status() : child.status();
    }
    // Signals the process; a thread takes none but SIGKILL, which abandons it (worker_thread).
    result<void> signal(int signo) const noexcept {
        return thread ? thread->send_signal(signo) : child.send_signal(signo);
    }
    // What a thread worker's code threw, once it ended of it: its exit event says it.
    [[nodiscard]] std::string failure() const { return thread ? thread->failure() : std::string(); }
    // Still one the primary may hand connections to: not leaving, not asked to.
    [[nodiscard]] bool takes_connections() const noexcept {
        return is_connected() && !disconnect_sent && !exited_after_disconnect;
    }

    const unsigned id;
    const pid_t pid;
    detail::link link;
    io::child_process child;  // a process worker's
    const stdio_options stdio;
    unique_fd out, err;  // relay or pipe: the worker's stdout and stderr, to read
    unique_fd status_pipe;
    std::unique_ptr<worker_thread> thread;  // a thread worker's

    bool online = false;
    bool disconnect_sent = false;
    bool exited_after_disconnect = false;  // it left because it was asked to, or chose to
    io::latch link_ended;
    io::latch ready;  // online, or, with wait_ready, once the worker called ready()
    io::latch exited;

    // The tasks reading from the worker: its link, and its stdout and stderr when relayed or piped.
    unsigned readers = 0;
    io::latch readers_done;
    std::stop_source stop_readers;

    // Supervision.
    unsigned home_slot = 0;  // the slot it was started for, filled or not (reuseport keeps its socket)
    bool wait_ready = false;
    bool retiring = false;
    bool succeeded = false;  // its primary stops for a successor (a binary upgrade), which replaces it
    bool recycle_asked = false;
    stop_reason reason = stop_reason::none;
    const clock::time_point started = clock::now();
    clock::time_point online_at{};  // once `online`: the restart policy's min_uptime runs from it
    clock::time_point last_beat = started;

    // What status() reports of it besides its channel's counts.
    std::chrono::microseconds heartbeat_rtt{};  // the last one the worker measured; 0 before
    std::uint64_t connections_handed = 0;       // offered, and taken
    std::uint64_t connections_refused = 0;      // offered, and refused
    bool in_history = false;                    // exited, and its counts joined the cluster's history

    // The user's worker_handle<P>, made by the typed primary<P> (see supervisor::make_handle).
    std::unique_ptr<worker_handle<erased>> handle;

private:
    std::array<std::shared_ptr<output_queue>, 2> piped_;  // by stdio_stream, when piped
};

// r->disconnect(), then until the process has exited. `r` is held: its exit event, taken
// meanwhile, would otherwise free the record.
inline io::task<void> disconnect_and_wait(std::shared_ptr<worker_record> r) {
    (void)co_await r->disconnect();
    (void)co_await r->exited.wait();
}

}  // namespace cluster::detail
