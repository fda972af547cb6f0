// cluster::io::child_process: a forked child held through a pidfd — await its exit, signal
// it without pid-reuse races, and never leave a zombie behind.
#pragma once

#include <cluster/config.hpp>

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

#include <cluster/io/detail/held_children.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace cluster::io {

// How a process ended: an exit code, or the signal that killed it.
struct exit_status {
    int code = 0;
    int signal = 0;
    bool core_dumped = false;

    [[nodiscard]] bool exited() const noexcept { return signal == 0; }
    [[nodiscard]] bool signaled() const noexcept { return signal != 0; }
    [[nodiscard]] bool success() const noexcept { return signal == 0 && code == 0; }
    [[nodiscard]] CLUSTER_DECL std::string to_string() const;
    friend bool operator==(const exit_status&, const exit_status&) = default;
};

class child_process {
public:
    child_process() noexcept = default;
    child_process(child_process&& other) noexcept
        : pid_(std::exchange(other.pid_, 0)), pidfd_(std::move(other.pidfd_)), status_(std::move(other.status_)),
          in_child_(other.in_child_) {}
    CLUSTER_DECL child_process& operator=(child_process&& other) noexcept;
    // A child still running when its handle goes is killed and reaped: no orphans, no zombies.
    ~child_process() { kill_and_reap(); }

    // fork(2). In the parent: the child's handle. In the child: an empty handle
    // (is_child() true); the parent's io_context is no longer current there — build a new one.
    static CLUSTER_DECL result<child_process> fork();

    // Takes charge of a child of this process by its pid.
    static CLUSTER_DECL result<child_process> adopt(pid_t pid);

    [[nodiscard]] bool is_child() const noexcept { return in_child_; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }
    [[nodiscard]] bool running() const noexcept { return pidfd_.valid() && !status_; }
    [[nodiscard]] const std::optional<exit_status>& status() const noexcept { return status_; }

    // Signals the very process this handle holds, never a later one that reused its pid.
    CLUSTER_DECL result<void> send_signal(int signo) const noexcept;

    // Waits for the child to end (the pidfd turns readable) and reaps it.
    CLUSTER_DECL task<result<exit_status>> wait();

    // Reaps the child if it has ended, without waiting.
    CLUSTER_DECL result<exit_status> try_wait();

    // Forgets the child: it is no longer killed or reaped by this handle.
    CLUSTER_DECL void detach() noexcept;

    // Whether a handle of this process holds `pid` and has not reaped it yet: a child whose
    // exit status is that handle's, which an orphan reaper must leave alone.
    [[nodiscard]] static bool held(pid_t pid) { return detail::held_children::instance().holds(pid); }

private:
    CLUSTER_DECL std::optional<result<exit_status>> try_reap();

    CLUSTER_DECL void kill_and_reap() noexcept;

    // The handle no longer holds its pid (reaped, or detached).
    CLUSTER_DECL void let_go() noexcept;

    pid_t pid_ = 0;
    unique_fd pidfd_;
    std::optional<exit_status> status_;
    bool in_child_ = false;
};

}  // namespace cluster::io

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/io/impl/child_process.ipp>
#endif
