// cluster::io::signal_set: signals delivered as awaitable values through a signalfd.
// The signals are blocked while the set lives, so they queue instead of interrupting.
#pragma once

#include <cluster/config.hpp>

#include <signal.h>
#include <sys/signalfd.h>

#include <cerrno>
#include <initializer_list>
#include <system_error>

#include <cluster/io/ops.hpp>

namespace cluster::io {

class signal_set {
public:
    CLUSTER_DECL signal_set(std::initializer_list<int> signals);
    signal_set(const signal_set&) = delete;
    signal_set& operator=(const signal_set&) = delete;
    // Unblocks only what this set blocked; signals still pending are then delivered.
    CLUSTER_DECL ~signal_set();

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

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/io/impl/signal_set.ipp>
#endif
