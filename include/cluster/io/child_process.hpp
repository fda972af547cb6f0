// cluster::io::child_process: a forked child held through a pidfd — await its exit, signal
// it without pid-reuse races, and never leave a zombie behind.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <utility>

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
    [[nodiscard]] std::string to_string() const {
        if (signal == 0) return "exit code " + std::to_string(code);
        const char* name = sigabbrev_np(signal);
        return std::string("signal SIG") + (name ? name : std::to_string(signal)) +
               (core_dumped ? " (core dumped)" : "");
    }
    friend bool operator==(const exit_status&, const exit_status&) = default;
};

class child_process {
public:
    child_process() noexcept = default;
    child_process(child_process&& other) noexcept
        : pid_(std::exchange(other.pid_, 0)), pidfd_(std::move(other.pidfd_)), status_(std::move(other.status_)),
          in_child_(other.in_child_) {}
    child_process& operator=(child_process&& other) noexcept {
        if (this != &other) {
            kill_and_reap();
            pid_ = std::exchange(other.pid_, 0);
            pidfd_ = std::move(other.pidfd_);
            status_ = std::move(other.status_);
            in_child_ = other.in_child_;
        }
        return *this;
    }
    // A child still running when its handle goes is killed and reaped: no orphans, no zombies.
    ~child_process() { kill_and_reap(); }

    // fork(2). In the parent: the child's handle. In the child: an empty handle
    // (is_child() true); the parent's io_context is no longer current there — build a new one.
    static result<child_process> fork() {
        pid_t pid = ::fork();
        if (pid < 0) return errno_code(errno);
        if (pid == 0) {
            child_process c;
            c.in_child_ = true;
            return c;
        }
        return adopt(pid);
    }

    // Takes charge of a child of this process by its pid.
    static result<child_process> adopt(pid_t pid) {
        int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
        if (fd < 0) return errno_code(errno);
        child_process c;
        c.pid_ = pid;
        c.pidfd_.reset(fd);
        return c;
    }

    [[nodiscard]] bool is_child() const noexcept { return in_child_; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }
    [[nodiscard]] bool running() const noexcept { return pidfd_.valid() && !status_; }
    [[nodiscard]] const std::optional<exit_status>& status() const noexcept { return status_; }

    // Signals the very process this handle holds, never a later one that reused its pid.
    result<void> send_signal(int signo) const noexcept {
        if (!pidfd_) return errno_code(ESRCH);
        if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signo, nullptr, 0) < 0) return errno_code(errno);
        return {};
    }

    // Waits for the child to end (the pidfd turns readable) and reaps it.
    task<result<exit_status>> wait() {
        if (status_) co_return *status_;
        if (!pidfd_) co_return errno_code(ECHILD);
        for (;;) {
            if (auto reaped = try_reap()) co_return *reaped;
            auto polled = co_await io::poll(pidfd_.get(), POLLIN);
            if (!polled) co_return polled.error();
        }
    }

    // Reaps the child if it has ended, without waiting.
    result<exit_status> try_wait() {
        if (status_) return *status_;
        if (auto reaped = try_reap()) return *reaped;
        return errno_code(EAGAIN);
    }

    // Forgets the child: it is no longer killed or reaped by this handle.
    void detach() noexcept {
        pid_ = 0;
        pidfd_.reset();
    }

private:
    std::optional<result<exit_status>> try_reap() {
        siginfo_t info{};
        if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) < 0)
            return result<exit_status>(errno_code(errno));
        if (info.si_pid == 0) return std::nullopt;
        exit_status s;
        if (info.si_code == CLD_EXITED)
            s.code = info.si_status;
        else {
            s.signal = info.si_status;
            s.core_dumped = info.si_code == CLD_DUMPED;
        }
        status_ = s;
        return result<exit_status>(s);
    }

    void kill_and_reap() noexcept {
        if (!running()) return;
        (void)send_signal(SIGKILL);
        siginfo_t info{};
        while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) < 0 &&
               errno == EINTR) {}
    }

    pid_t pid_ = 0;
    unique_fd pidfd_;
    std::optional<exit_status> status_;
    bool in_child_ = false;
};

}  // namespace cluster::io
