// cluster::io::latch: a flag that tasks wait on until it is set, once. A wait answers to the
// awaiting task's stop token, so with_timeout() and when_any() can give up on it.
#pragma once

#include <coroutine>

#include <cluster/io/detail/parked.hpp>
#include <cluster/io/task.hpp>

namespace cluster::io {

class latch {
public:
    latch() = default;
    latch(const latch&) = delete;
    latch& operator=(const latch&) = delete;

    void set() noexcept {
        set_ = true;
        waiters_.wake_all();
    }
    [[nodiscard]] bool is_set() const noexcept { return set_; }

    // True once set; false if the awaiting task was asked to stop first.
    [[nodiscard]] auto wait() noexcept { return awaiter{*this}; }

private:
    struct awaiter : detail::parked {
        latch& self;
        explicit awaiter(latch& l) noexcept : self(l) {}
        bool await_ready() const noexcept { return self.set_; }
        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            park(self.waiters_, h);
        }
        bool await_resume() noexcept {
            (void)resumed();
            return self.set_;
        }
    };

    bool set_ = false;
    detail::parked_list waiters_;
};

// A latch's wait as a task, for when_any() and with_timeout(): done once `l` is set, or
// once the awaiting task is asked to stop.
inline task<void> when_set(latch& l) { (void)co_await l.wait(); }

}  // namespace cluster::io
