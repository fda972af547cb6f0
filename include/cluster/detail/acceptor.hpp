// cluster::detail::acceptor: the primary's accept loop on one listening socket — a multishot
// io_uring accept, or readiness and accept4() where the kernel has none — handing each new
// connection on at once; paused around fork(), and emptied, not dropped, when it stops.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <system_error>
#include <utility>

#include <cluster/detail/pressure_log.hpp>
#include <cluster/error.hpp>
#include <cluster/io/multishot_accept.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/overload.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

// Where accepted connections go: the balancer, which owns them from then on.
using admit_function = std::function<void(unique_fd)>;

// Every connection the kernel has queued on the non-blocking `fd`, to `admit`; an error
// other than an empty queue.
inline std::error_code accept_queued(int fd, const admit_function& admit) {
    for (;;) {
        unique_fd socket(::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC));
        if (socket) {
            admit(std::move(socket));
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {};
        if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO) return errno_code(errno);
    }
}

// The graceful stop's last accepts on `fd`: what the kernel already queued, without waiting.
inline void sweep(int fd, const admit_function& admit) {
    if (fd < 0) return;
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    (void)accept_queued(fd, admit);
}

// How long accepting pauses when the primary is out of descriptors: long enough not to spin
// on a full table, short enough that connections waiting in the backlog hardly notice.
inline constexpr std::chrono::milliseconds accept_back_off{10};

class acceptor {
public:
    acceptor(int listen_fd, admit_function admit, overload_counts& counts)
        : fd_(listen_fd), multishot_(listen_fd), admit_(std::move(admit)), counts_(counts) {}
    acceptor(const acceptor&) = delete;
    acceptor& operator=(const acceptor&) = delete;

    // Accepts until stop(). One armed multishot accept yields every connection, with no
    // accept syscalls of our own; kernels before 5.19 answer EINVAL, and readiness and
    // accept4() take over.
    static io::task<void> run(std::shared_ptr<acceptor> self) {
        std::stop_callback on_stop(self->stop_.get_token(), [&multishot = self->multishot_] { multishot.cancel(); });
        bool accepted_any = false;
        while (!self->stopped()) {
            auto next = co_await self->multishot_.next();
            if (self->stopped()) co_return;
            if (next) {
                accepted_any = true;
                self->admit_(std::move(*next));
                if (std::exchange(self->back_off_, false) && !co_await self->pause_briefly()) co_return;
                continue;
            }
            if (!accepted_any && next.error() == std::errc::invalid_argument) break;
            const bool go_on = co_await self->survive(next.error());
            if (!go_on) co_return;
        }
        if (!self->stopped()) co_await self->poll_loop();
    }

    // Around a fork-mode worker's fork(): every connection accepted by then has been
    // handed on (the child closes what the balancer holds), and none is accepted until
    // the child exists.
    void pause() { multishot_.pause(); }
    void resume() { multishot_.rearm(); }

    // A connection just admitted had to be shed: accepting pauses briefly, rather than
    // taking connections as fast as the kernel completes them only to close them.
    void back_off() noexcept { back_off_ = true; }

    // Accepts no more: what was accepted and not handed on yet is handed on first. A second
    // call does nothing: the first one's wake-up of run() is queued, and must stay so.
    void stop() {
        if (stopped()) return;
        multishot_.pause();
        for (auto& socket : multishot_.take_queued()) admit_(std::move(socket));
        stop_.request_stop();
    }
    [[nodiscard]] bool stopped() const noexcept { return stop_.stop_requested(); }

    // In a forked child: the connections accepted and not handed on are the parent's.
    void close_queued_in_forked_child() const noexcept { multishot_.close_queued_in_forked_child(); }

private:
    // Readiness, then accept4() until the queue is empty: each connection is handed on from
    // the moment it exists.
    io::task<void> poll_loop() {
        ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
        while (!stopped()) {
            auto ready = co_await io::poll(fd_, POLLIN).with_stop_token(stop_.get_token());
            if (stopped()) break;
            const std::error_code failed = ready ? accept_queued(fd_, admit_) : ready.error();
            if (!failed) continue;
            const bool go_on = co_await survive(failed);
            if (!go_on) break;
        }
    }

    // Out of descriptors or memory: say so (once a second at most) and wait a little, as a
    // server must; a connection the client gave up on before we took it is not an error.
    io::task<bool> survive(const std::error_code& ec) {
        if (ec == std::errc::operation_canceled) co_return false;
        if (ec == std::errc::connection_aborted || ec == std::errc::protocol_error) co_return true;
        ++counts_.accept_failures;
        log_.hit("primary: accept: " + ec.message() + " (retrying)");
        co_return co_await pause_briefly();
    }

    // The multishot accept stops meanwhile: it would go on taking descriptors.
    io::task<bool> pause_briefly() {
        multishot_.pause();
        auto slept = co_await io::sleep_for(accept_back_off).with_stop_token(stop_.get_token());
        co_return static_cast<bool>(slept) && !stopped();
    }

    int fd_;
    io::multishot_accept multishot_;
    admit_function admit_;
    overload_counts& counts_;
    std::stop_source stop_;
    pressure_log log_;
    bool back_off_ = false;
};

}  // namespace cluster::detail
