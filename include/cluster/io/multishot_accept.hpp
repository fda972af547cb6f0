// cluster::io::multishot_accept: one armed io_uring accept that yields every incoming
// connection, queued until asked for; re-armed if the kernel ends it, paused around fork().
#pragma once

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
        if (armed_) return ctx_->cancel(this);
        if (waiter_) {
            queue_.emplace_back(errno_code(ECANCELED));
            ctx_->post(std::exchange(waiter_, {}));
        }
    }

    // Stops the op and waits for its last completion, resuming nobody: whatever it accepted
    // is queued here, and nothing more appears until rearm(). For fork(): the kernel installs
    // an accepted fd before its completion is seen, and a child forked in between would
    // keep a copy nobody knows of.
    void pause() {
        if (!armed_) return;
        pausing_ = true;
        ctx_->cancel_and_wait(this, disarmed_);
        pausing_ = false;
    }

    // After pause(): a waiting next() takes what is queued, or the op is armed again.
    void rearm() {
        if (!waiter_) return;
        if (queue_.empty()) return arm();
        ctx_->post(std::exchange(waiter_, {}));
    }

    // The connections accepted and not asked for yet; errors queued are dropped.
    [[nodiscard]] std::vector<unique_fd> take_queued() {
        std::vector<unique_fd> out;
        for (auto& r : queue_)
            if (r) out.push_back(std::move(*r));
        queue_.clear();
        return out;
    }

    // In a forked child: the queued connections are the parent's.
    void close_queued_in_forked_child() const noexcept {
        for (const auto& r : queue_)
            if (r) ::close(r->get());
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
        else if (!(flags & IORING_CQE_F_MORE) && !(m->pausing_ && res == -ECANCELED))
            m->queue_.emplace_back(errno_code(-res));
        if (resume && m->waiter_ && !m->queue_.empty()) m->waiter_.resume();
    }

    int fd_;
    io_context* ctx_ = nullptr;
    std::deque<result<unique_fd>> queue_;
    std::coroutine_handle<> waiter_;
    bool armed_ = false;
    bool disarmed_ = false;
    bool pausing_ = false;  // its own cancel is no error to report
};

}  // namespace cluster::io
