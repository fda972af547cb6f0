// cluster::io::child_process's definitions: pidfd children, their exit, signals. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/io/child_process.hpp>
#include <cluster/io/signal_name.hpp>

namespace cluster::io {

CLUSTER_DECL child_process& child_process::operator=(child_process&& other) noexcept {
    if (this != &other) {
        kill_and_reap();
        pid_ = std::exchange(other.pid_, 0);
        pidfd_ = std::move(other.pidfd_);
        status_ = std::move(other.status_);
        in_child_ = other.in_child_;
    }
    return *this;
}

CLUSTER_DECL result<child_process> child_process::fork() {
    pid_t pid = ::fork();
    if (pid < 0) return errno_code(errno);
    if (pid == 0) {
        detail::held_children::instance().forget_all();
        child_process c;
        c.in_child_ = true;
        return c;
    }
    return adopt(pid);
}

CLUSTER_DECL result<child_process> child_process::adopt(pid_t pid) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) return errno_code(errno);
    child_process c;
    c.pid_ = pid;
    c.pidfd_.reset(fd);
    detail::held_children::instance().hold(pid);
    return c;
}

CLUSTER_DECL result<void> child_process::send_signal(int signo) const noexcept {
    if (!pidfd_) return errno_code(ESRCH);
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), signo, nullptr, 0) < 0) return errno_code(errno);
    return {};
}

CLUSTER_DECL task<result<exit_status>> child_process::wait() {
    if (status_) co_return *status_;
    if (!pidfd_) co_return errno_code(ECHILD);
    for (;;) {
        if (auto reaped = try_reap()) co_return *reaped;
        auto polled = co_await io::poll(pidfd_.get(), POLLIN);
        if (!polled) co_return polled.error();
    }
}

CLUSTER_DECL result<exit_status> child_process::try_wait() {
    if (status_) return *status_;
    if (auto reaped = try_reap()) return *reaped;
    return errno_code(EAGAIN);
}

CLUSTER_DECL void child_process::detach() noexcept {
    let_go();
    pid_ = 0;
    pidfd_.reset();
}

CLUSTER_DECL void child_process::let_go() noexcept {
    if (pid_ > 0 && !status_) detail::held_children::instance().release(pid_);
}

CLUSTER_DECL std::optional<result<exit_status>> child_process::try_reap() {
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
    let_go();
    status_ = s;
    return result<exit_status>(s);
}

CLUSTER_DECL void child_process::kill_and_reap() noexcept {
    if (!running()) return;
    (void)send_signal(SIGKILL);
    siginfo_t info{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED) < 0 &&
           errno == EINTR) {}
    let_go();
}

CLUSTER_DECL std::string exit_status::to_string() const {
    if (signal == 0) return "exit code " + std::to_string(code);
    const auto name = signal_name(signal);  // "signal 40" where nothing names it
    return (name.starts_with("SIG") ? "signal " + name : name) + (core_dumped ? " (core dumped)" : "");
}

}  // namespace cluster::io
