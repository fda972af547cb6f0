// cluster::io::signal_set: signals delivered as awaitable values through a signalfd.
// The signals are blocked while the set lives, so they queue instead of interrupting.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <initializer_list>
#include <system_error>

#include <cluster/io/ops.hpp>

namespace cluster::io {

class signal_set {
public:
    signal_set(std::initializer_list<int> signals) {
        sigemptyset(&mask_);
        for (int s : signals) sigaddset(&mask_, s);
        if (int err = pthread_sigmask(SIG_BLOCK, &mask_, &previous_); err != 0)
            throw std::system_error(errno_code(err), "cluster: pthread_sigmask");
        fd_.reset(::signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC));
        if (!fd_) {
            int err = errno;
            pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
            throw std::system_error(errno_code(err), "cluster: signalfd");
        }
    }
    signal_set(const signal_set&) = delete;
    signal_set& operator=(const signal_set&) = delete;
    // Unblocks only what this set blocked; signals still pending are then delivered.
    ~signal_set() {
        sigset_t unblock;
        sigemptyset(&unblock);
        for (int s = 1; s < NSIG; ++s)
            if (sigismember(&mask_, s) == 1 && sigismember(&previous_, s) == 0) sigaddset(&unblock, s);
        fd_.reset();
        pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
    }

    [[nodiscard]] bool contains(int signo) const noexcept { return sigismember(&mask_, signo) == 1; }
    [[nodiscard]] int native_handle() const noexcept { return fd_.get(); }

    // The next signal's number; io_uring waits on the non-blocking signalfd by polling it.
    class wait_op : public io::basic_op<wait_op, result<int>> {
    public:
        explicit wait_op(int fd) noexcept : fd_(fd) {}
        void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_read(sqe, fd_, &info_, sizeof info_, 0); }
        result<int> complete(int res) noexcept {
            if (res < 0) return errno_code(-res);
            if (static_cast<std::size_t>(res) != sizeof info_) return make_error_code(errc::truncated);
            return static_cast<int>(info_.ssi_signo);
        }

    private:
        int fd_;
        signalfd_siginfo info_{};
    };
    [[nodiscard]] wait_op next() const noexcept { return wait_op{fd_.get()}; }

private:
    sigset_t mask_{};
    sigset_t previous_{};
    unique_fd fd_;
};

}  // namespace cluster::io
