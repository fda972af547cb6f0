// cluster::io::multishot_accept: one armed io_uring accept that yields every incoming
// connection, queued until asked for; re-armed if the kernel ends it.
#pragma once

#include <cerrno>
#include <coroutine>
#include <deque>

#include <cluster/io/io_context.hpp>
#include <cluster/io/result.hpp>
#include <cluster/io/unique_fd.hpp>

namespace cluster::io {

class multishot_accept : private detail::completion {
public:
    explicit multishot_accept(int listen_fd) noexcept : fd_(listen_fd) { complete = &on_complete; }
    multishot_accept(const multishot_accept&) = delete;
    multishot_accept& operator=(const multishot_accept&) = delete;
    ~multishot_accept() {
        if (armed_) ctx_->cancel_and_wait(this, disarmed_);
    }

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
    void cancel() {
        if (armed_) ctx_->cancel(this);
    }

private:
    void arm() {
        if (armed_) return;
        ctx_ = &io_context::current_or_throw();
        io_uring_prep_multishot_accept(ctx_->sqe(this), fd_, nullptr, nullptr, SOCK_CLOEXEC);
        armed_ = true;
        disarmed_ = false;
    }

    static void on_complete(detail::completion* self, int res, unsigned flags, bool resume) noexcept {
        auto* m = static_cast<multishot_accept*>(self);
        if (!(flags & IORING_CQE_F_MORE)) {
            m->armed_ = false;
            m->disarmed_ = true;
        }
        if (res >= 0)
            m->queue_.emplace_back(unique_fd(res));
        else if (!(flags & IORING_CQE_F_MORE))
            m->queue_.emplace_back(errno_code(-res));
        if (resume && m->waiter_ && !m->queue_.empty()) m->waiter_.resume();
    }

    int fd_;
    io_context* ctx_ = nullptr;
    std::deque<result<unique_fd>> queue_;
    std::coroutine_handle<> waiter_;
    bool armed_ = false;
    bool disarmed_ = false;
};

} // namespace cluster::io
