// cluster::io::detail::notice: tasks waiting for the next change to something they watch.
// notify() wakes them all, and each looks again at what it waits for.
#pragma once

#include <coroutine>

#include <cluster/io/detail/parked.hpp>

namespace cluster::io::detail {

class notice {
public:
    notice() = default;
    notice(const notice&) = delete;
    notice& operator=(const notice&) = delete;

    void notify() noexcept { waiters_.wake_all(); }

    // True once notified; false if the awaiting task was asked to stop first.
    [[nodiscard]] auto next() noexcept { return awaiter{*this}; }

private:
    struct awaiter : parked {
        notice& self;
        explicit awaiter(notice& n) noexcept : self(n) {}
        bool await_ready() const noexcept { return false; }
        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            park(self.waiters_, h);
        }
        bool await_resume() noexcept { return resumed(); }
    };

    parked_list waiters_;
};

}  // namespace cluster::io::detail
