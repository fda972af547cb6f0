// cluster::io::detail::spinning_wakes: the wakes other threads leave for a loop while it spins,
// which it takes without a system call on either side, in place of a CQE through the kernel.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace cluster::io::detail {

// Open while the loop spins. A wake left then is a completion's user data that the loop sees
// at its next look, and dispatches as that completion's CQE (res 0). Opening and closing take
// the lock that leave() holds: once closed, nothing is left, and a thread that finds it closed
// posts its CQE through the kernel as before.
class spinning_wakes {
public:
    void open() {
        const std::lock_guard lock(mutex_);
        open_ = true;
    }

    // From another thread: true if the spinning loop will take this wake.
    [[nodiscard]] bool leave(std::uintptr_t user_data) {
        const std::lock_guard lock(mutex_);
        if (!open_) return false;
        left_.push_back(user_data);
        any_.store(true, std::memory_order_release);
        return true;
    }

    // The spinning loop's look: one load, no lock.
    [[nodiscard]] bool any() const noexcept { return any_.load(std::memory_order_acquire); }

    // Closes it and hands each wake left to `take`: true if there was one.
    template <class Take>
    bool close(Take take) {
        const std::lock_guard lock(mutex_);
        open_ = false;
        for (const std::uintptr_t w : left_) take(w);
        const bool took = !left_.empty();
        left_.clear();
        any_.store(false, std::memory_order_relaxed);
        return took;
    }

private:
    std::mutex mutex_;
    bool open_ = false;
    std::atomic<bool> any_ = false;
    std::vector<std::uintptr_t> left_;
};

}  // namespace cluster::io::detail
