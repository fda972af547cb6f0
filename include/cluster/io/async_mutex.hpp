// cluster::io::async_mutex: mutual exclusion between the tasks of one loop. lock() waits
// its turn, first come first served, and gives a guard that unlocks when it goes.
#pragma once

#include <coroutine>
#include <optional>
#include <utility>

#include <cluster/io/detail/parked.hpp>

namespace cluster::io {

class async_mutex {
public:
    // Holds the lock; the next task waiting gets it when the guard goes.
    class guard {
    public:
        guard(guard&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
        guard& operator=(guard&&) = delete;
        ~guard() {
            if (owner_) owner_->unlock();
        }

    private:
        friend class async_mutex;
        explicit guard(async_mutex* owner) noexcept : owner_(owner) {}
        async_mutex* owner_;
    };

    async_mutex() = default;
    async_mutex(const async_mutex&) = delete;
    async_mutex& operator=(const async_mutex&) = delete;

    // The lock, once everyone who asked before has had it; nothing if the awaiting task is
    // asked to stop first (then it never holds the lock, even if it was about to).
    [[nodiscard]] auto lock() noexcept { return awaiter{*this}; }
    [[nodiscard]] bool locked() const noexcept { return locked_; }

private:
    struct awaiter : detail::parked {
        async_mutex& mutex;
        bool owns = false;  // the lock is this awaiter's to hand to its task

        explicit awaiter(async_mutex& m) noexcept : mutex(m) {}
        awaiter(awaiter&& other) noexcept : detail::parked(std::move(other)), mutex(other.mutex) {}
        // Handed the lock, then destroyed before its task ran: the lock goes on.
        ~awaiter() {
            if (owns) mutex.unlock();
        }

        bool await_ready() noexcept {
            if (mutex.locked_) return false;
            mutex.locked_ = owns = true;
            return true;
        }
        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            park(mutex.waiters_, h);
        }
        std::optional<guard> await_resume() noexcept {
            const bool stopped = !resumed();
            if (!std::exchange(owns, false)) return std::nullopt;
            if (stopped) {
                mutex.unlock();
                return std::nullopt;
            }
            return guard(&mutex);
        }
    };

    // The oldest waiter, if any, gets the lock as it is: it never looks unlocked meanwhile.
    void unlock() noexcept {
        if (waiters_.empty()) {
            locked_ = false;
            return;
        }
        auto* next = static_cast<awaiter*>(waiters_.front());
        next->owns = true;
        next->wake();
    }

    bool locked_ = false;
    detail::parked_list waiters_;
};

}  // namespace cluster::io
