// cluster::io::multishot_accept: one armed io_uring accept that yields every incoming
// connection, queued until asked for; re-armed if the kernel ends it, paused around fork().
#pragma once

#include <cluster/config.hpp>

#include <cerrno>
#include <coroutine>
#include <deque>
#include <utility>
#include <vector>

#include <cluster/io/io_context.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

#include <unistd.h>

namespace cluster::io {

class multishot_accept : private detail::completion {
public:
    explicit multishot_accept(int listen_fd) noexcept : fd_(listen_fd) { complete = &on_complete; }
    multishot_accept(const multishot_accept&) = delete;
    multishot_accept& operator=(const multishot_accept&) = delete;
    CLUSTER_DECL ~multishot_accept();

    // The next accepted connection (close-on-exec), or the error that ended accepting.
    [[nodiscard]] auto next() noexcept {
        struct awaiter {
            multishot_accept& self;
            bool await_ready() const noexcept { return !self.queue_.empty(); }
            bool await_suspend(std::coroutine_handle<> h) {
                self.arm();
                if (!self.queue_.empty()) return false;
                self.waiter_ = h;
                return true;
            }
            result<unique_fd> await_resume() {
                self.waiter_ = {};
                auto r = std::move(self.queue_.front());
                self.queue_.pop_front();
                return r;
            }
        };
        return awaiter{*this};
    }

    // Stops accepting; a waiting next() gets ECANCELED.
    CLUSTER_DECL void cancel();

    // Stops the op and waits for its last completion, resuming nobody: whatever it accepted
    // is queued here, and nothing more appears until rearm(). For fork(): the kernel installs
    // an accepted fd before its completion is seen, and a child forked in between would
    // keep a copy nobody knows of.
    CLUSTER_DECL void pause();

    // After pause(): a waiting next() takes what is queued, or the op is armed again.
    CLUSTER_DECL void rearm();

    // The connections accepted and not asked for yet; errors queued are dropped.
    [[nodiscard]] CLUSTER_DECL std::vector<unique_fd> take_queued();

    // In a forked child: the queued connections are the parent's.
    CLUSTER_DECL void close_queued_in_forked_child() const noexcept;

private:
    CLUSTER_DECL void arm();

    static CLUSTER_DECL void on_complete(detail::completion* self, int res, unsigned flags, bool resume) noexcept;

    int fd_;
    io_context* ctx_ = nullptr;
    std::deque<result<unique_fd>> queue_;
    std::coroutine_handle<> waiter_;
    bool armed_ = false;
    bool disarmed_ = false;
    bool pausing_ = false;  // its own cancel is no error to report
};

}  // namespace cluster::io

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/io/impl/multishot_accept.ipp>
#endif
