// cluster::worker_handle<P>: the primary's hold on one worker — its id and pid, messages and
// requests to it, kill(), a graceful disconnect(), its liveness, and what became of it.
#pragma once

#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include <cluster/detail/control.hpp>
#include <cluster/detail/launch.hpp>
#include <cluster/detail/link.hpp>
#include <cluster/events.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/task.hpp>
#include <cluster/ipc/channel.hpp>

namespace cluster {

template <class P>
class primary;
namespace detail {
template <class P>
class balancer;
}

template <class P>
class worker_handle : public detail::link_end<P> {
    using detail::link_end<P>::link_;
    using detail::link_end<P>::requests_;

public:
    worker_handle(unsigned id, detail::launched&& started)
        : detail::link_end<P>(std::move(started.link)), id_(id), pid_(started.child.pid()),
          child_(std::move(started.child)), out_(std::move(started.out)), err_(std::move(started.err)),
          status_pipe_(std::move(started.status)) {}

    [[nodiscard]] unsigned id() const noexcept { return id_; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    // Signals the worker process (never another that reused its pid). This is not a
    // disconnect: a worker killed this way did not exit after disconnect.
    result<void> kill(int signal = SIGTERM) const noexcept { return child_.send_signal(signal); }

    // Asks the worker to leave and waits until it has disconnected: its receive() ends,
    // its code finishes, and it exits (exited_after_disconnect() is then true).
    io::task<result<void>> disconnect() {
        if (!connected_) co_return result<void>{};
        if (reason_ == stop_reason::none) reason_ = stop_reason::disconnect;
        exited_after_disconnect_ = true;
        if (!disconnect_sent_) {
            disconnect_sent_ = true;
            // Queued without waiting for the socket to drain: a worker that reads nothing must
            // not hold this up (shutdown()'s deadline is what deals with it). If the worker is
            // already gone, the wait below ends all the same.
            const detail::control::disconnect leave;
            (void)link_.send(leave);
        }
        (void)co_await disconnected_.wait();
        co_return result<void>{};
    }

    [[nodiscard]] bool is_online() const noexcept { return online_; }
    // Online, or, with primary_options::wait_ready, once the worker called ready().
    [[nodiscard]] bool is_ready() const noexcept { return ready_.is_set(); }
    [[nodiscard]] bool is_connected() const noexcept { return connected_; }
    [[nodiscard]] bool is_dead() const noexcept { return child_.status().has_value(); }
    [[nodiscard]] bool exited_after_disconnect() const noexcept { return exited_after_disconnect_; }
    // Why the primary is ending (or ended) it; none while it is not (see exit_event::reason).
    [[nodiscard]] stop_reason reason() const noexcept { return reason_; }
    // How the process ended, once it has.
    [[nodiscard]] const std::optional<io::exit_status>& status() const noexcept { return child_.status(); }

private:
    friend class primary<P>;
    friend class detail::balancer<P>;

    // In a forked sibling: the primary's descriptors for this worker are not the sibling's.
    void close_in_forked_child() const noexcept {
        link_.close_queued_fds_in_forked_child();
        for (int fd : {link_.native_handle(), child_.pidfd(), out_.get(), err_.get(), status_pipe_.get()})
            if (fd >= 0) ::close(fd);
    }

    // The worker has exited and everything it sent was read: its descriptors go now, not
    // when the last event about it does. Later sends fail with channel_closed, kill() with ESRCH.
    void release() {
        link_.close();
        child_.detach();
        out_.reset();
        err_.reset();
    }

    // The worker's side of the stream is done: stop talking to it, both ways.
    void disconnected() {
        connected_ = false;
        ::shutdown(link_.native_handle(), SHUT_RDWR);
        requests_.fail_all(make_error_code(errc::peer_gone));
        disconnected_.set();
    }

    using clock = std::chrono::steady_clock;

    unsigned id_;
    pid_t pid_;
    io::child_process child_;
    unique_fd out_, err_, status_pipe_;
    bool online_ = false;
    bool connected_ = true;
    bool disconnect_sent_ = false;
    bool exited_after_disconnect_ = false;
    io::latch disconnected_;
    // The tasks reading from the worker (channel, and stdout/stderr when silent).
    unsigned readers_ = 0;
    io::latch readers_done_;
    std::stop_source stop_readers_;
    io::latch exited_;

    // Supervision (primary.hpp).
    unsigned slot_ = 0;       // the place it fills in the cluster; 0: none (leaving, or a replacement not ready yet)
    unsigned home_slot_ = 0;  // the place it was started for, filled or not
    bool retiring_ = false;
    bool wait_ready_ = false;
    bool recycle_asked_ = false;
    stop_reason reason_ = stop_reason::none;
    clock::time_point started_ = clock::now();
    clock::time_point last_beat_ = started_;
    io::latch ready_;
};

}  // namespace cluster
