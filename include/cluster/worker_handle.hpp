// cluster::worker_handle<P>: the primary's hold on one worker — its id, slot and pid, messages
// and requests to it, kill(), a graceful disconnect(), its liveness, its piped output, and
// what became of it.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <optional>

#include <cluster/detail/link.hpp>
#include <cluster/detail/worker_record.hpp>
#include <cluster/events.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/io/task.hpp>
#include <cluster/output_line.hpp>
#include <cluster/result.hpp>
#include <cluster/worker_output.hpp>

namespace cluster {

template <class P>
class worker_handle : public worker_handle<detail::erased>, public detail::link_end<P> {
public:
    // The supervisor's record of the worker owns the handle.
    explicit worker_handle(detail::worker_record& record) noexcept
        : detail::link_end<P>(record.link), record_(&record) {}

    [[nodiscard]] unsigned id() const noexcept { return record_->id; }
    [[nodiscard]] pid_t pid() const noexcept { return record_->pid; }
    // The slot the worker was started for: its place in the cluster, which its replacement
    // takes with the same fork_options (see primary<P>::worker_in_slot()).
    [[nodiscard]] unsigned slot() const noexcept { return record_->home_slot; }

    // Signals the worker process (never another that reused its pid). This is not a
    // disconnect: a worker killed this way did not exit after disconnect. A thread worker
    // cannot be killed: SIGKILL abandons it (its exit event comes now, as if killed, and the
    // thread runs on detached); any other signal is operation_not_supported (docs/threads.md).
    result<void> kill(int signal = SIGTERM) const noexcept { return record_->signal(signal); }

    // Asks the worker to leave and waits until it has disconnected: its receive() ends,
    // its code finishes, and it exits (exited_after_disconnect() is then true).
    io::task<result<void>> disconnect() { return record_->disconnect(); }

    [[nodiscard]] bool is_online() const noexcept { return record_->online; }
    // Online, or, with primary_options::wait_ready, once the worker called ready().
    [[nodiscard]] bool is_ready() const noexcept { return record_->ready.is_set(); }
    [[nodiscard]] bool is_connected() const noexcept { return record_->is_connected(); }
    [[nodiscard]] bool is_dead() const noexcept { return record_->is_dead(); }
    [[nodiscard]] bool exited_after_disconnect() const noexcept { return record_->exited_after_disconnect; }
    // Why the primary is ending (or ended) it; none while it is not (see exit_event::reason).
    [[nodiscard]] stop_reason reason() const noexcept { return record_->reason; }
    // How the process ended, once it has.
    [[nodiscard]] const std::optional<io::exit_status>& status() const noexcept { return record_->exit_status(); }
    // Whether this worker is a thread of the primary's process (start_mode::thread).
    [[nodiscard]] bool is_thread() const noexcept { return record_->is_thread(); }

    // The worker's stdout or stderr, when stdio_options chose output_mode::pipe for it: its
    // lines, which outlive the worker and this handle. Throws std::system_error
    // (invalid_argument) for a stream that is not piped.
    [[nodiscard]] worker_output output(stdio_stream s) const { return worker_output(record_->piped_output(s)); }

private:
    detail::worker_record* record_;
};

}  // namespace cluster
