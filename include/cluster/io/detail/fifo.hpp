// cluster::io::detail::fifo<T>: a first-in, first-out queue in one circular buffer that keeps
// its capacity, so the loop's queues allocate while they grow and never once they are warm.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace cluster::io::detail {

// std::deque frees a block each time its front leaves one and takes a new one at its back:
// a queue that a turn fills and empties, as the loop's are, allocates every few turns.
template <class T>
class fifo {
    static_assert(std::is_trivially_copyable_v<T>, "fifo holds handles and plain records");

public:
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

    void push_back(const T& value) {
        if (size_ == slots_.size()) grow();
        slots_[(head_ + size_) & (slots_.size() - 1)] = value;
        ++size_;
    }

    [[nodiscard]] T& front() noexcept { return slots_[head_]; }

    void pop_front() noexcept {
        head_ = (head_ + 1) & (slots_.size() - 1);
        --size_;
    }

    // Takes the first element `match` accepts out of the queue into `out`, keeping the order
    // of the others; false if none does.
    template <class Match>
    bool take_first(Match match, T& out) {
        for (std::size_t i = 0; i < size_; ++i) {
            if (!match(at(i))) continue;
            out = at(i);
            for (std::size_t j = i + 1; j < size_; ++j) at(j - 1) = at(j);
            --size_;
            return true;
        }
        return false;
    }

    // Removes every element equal to `value`, keeping the order of the others.
    void erase(const T& value) noexcept {
        std::size_t kept = 0;
        for (std::size_t i = 0; i < size_; ++i)
            if (!(at(i) == value)) at(kept++) = at(i);
        size_ = kept;
    }

private:
    T& at(std::size_t i) noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }

    // Doubles the capacity (a power of two, for the mask), the queue starting at 0 again.
    void grow() {
        std::vector<T> bigger(slots_.empty() ? 16 : 2 * slots_.size());
        for (std::size_t i = 0; i < size_; ++i) bigger[i] = at(i);
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<T> slots_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace cluster::io::detail
