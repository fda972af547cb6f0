// cluster::io::mailbox<T>: a queue that tasks take from, in order or picking what matches (a
// kind of event, a type of message), until it is closed; weighed, for its owner to bound.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

#include <cluster/io/detail/parked.hpp>

namespace cluster::io {

template <class T>
class mailbox {
public:
    // Which items a taker wants, given the key it passed to take(); none: any item.
    using match_fn = bool (*)(const T&, std::uint64_t key) noexcept;
    // What an item weighs toward queued_cost(): its bytes, say.
    using cost_fn = std::size_t (*)(const T&) noexcept;

    explicit mailbox(cost_fn cost = nullptr) noexcept : cost_(cost) {}
    mailbox(const mailbox&) = delete;
    mailbox& operator=(const mailbox&) = delete;

    // Hands value to the oldest taker it matches, or queues it. Nothing is
    // queued once closed.
    void push(T value) {
        if (closed_) return;
        if (hand_over(value)) return;
        queued_cost_ += weigh(value);
        items_.push_back(std::move(value));
    }

    // The same, but queued before everything else: an item that goes again before the
    // others (a job to retry, say).
    void push_front(T value) {
        if (closed_) return;
        give_back(std::move(value));
    }

    // What is queued can still be taken; after that takers get nothing.
    void close() noexcept {
        closed_ = true;
        waiters_.wake_all();
    }

    [[nodiscard]] bool closed() const noexcept { return closed_; }
    [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
    // What the queued items weigh together (0 without a cost function).
    [[nodiscard]] std::size_t queued_cost() const noexcept { return queued_cost_; }

    // The oldest item that matches, waiting for one if needed; nothing once closed and
    // none is left, or if the taking task was asked to stop.
    [[nodiscard]] auto take(match_fn match = nullptr, std::uint64_t key = 0) noexcept {
        return taker{*this, match, key};
    }

    std::optional<T> try_take(match_fn match = nullptr, std::uint64_t key = 0) {
        for (auto it = items_.begin(); it != items_.end(); ++it) {
            if (matches(*it, match, key)) {
                queued_cost_ -= weigh(*it);
                std::optional<T> out(std::move(*it));
                erase(it);
                return out;
            }
        }
        return std::nullopt;
    }

    // Drops the queued items pred accepts; returns how many.
    template <class Pred>
    std::size_t erase_if(Pred pred) {
        return std::erase_if(items_, [&](const T& item) {
            if (!pred(item)) return false;
            queued_cost_ -= weigh(item);
            return true;
        });
    }

    // Takes the oldest queued item pred accepts, if any: for an owner that drops to stay
    // within a bound.
    template <class Pred>
    std::optional<T> evict_first(Pred pred) {
        for (auto it = items_.begin(); it != items_.end(); ++it) {
            if (!pred(*it)) continue;
            queued_cost_ -= weigh(*it);
            std::optional<T> out(std::move(*it));
            erase(it);
            return out;
        }
        return std::nullopt;
    }

private:
    struct taker : detail::parked {
        mailbox& box;
        match_fn match;
        std::uint64_t key;
        std::optional<T> slot;
        taker(mailbox& b, match_fn m, std::uint64_t k) noexcept : box(b), match(m), key(k) {}
        bool await_ready() {
            slot = box.try_take(match, key);
            return slot || box.closed_;
        }
        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            park(box.waiters_, h);
        }
        // A stop that came after an item was handed over, but before this task ran, puts
        // the item back in front: a taker that lost a when_any() race must not eat it.
        std::optional<T> await_resume() {
            if (!resumed() && slot) box.give_back(std::move(*std::exchange(slot, std::nullopt)));
            return std::exchange(slot, std::nullopt);
        }
    };

    bool hand_over(T& value) {
        for (detail::parked* p = waiters_.front(); p; p = detail::parked_list::next(*p)) {
            auto* t = static_cast<taker*>(p);
            if (matches(value, t->match, t->key)) {
                t->slot.emplace(std::move(value));
                t->wake();
                return true;
            }
        }
        return false;
    }

    // It was the oldest of its kind when it was handed over, so it is again.
    void give_back(T value) {
        if (hand_over(value)) return;
        queued_cost_ += weigh(value);
        items_.push_front(std::move(value));
    }

    // The oldest goes by pop_front(): the general erase() costs several times as much, and the
    // oldest is what a receive() takes.
    void erase(typename std::deque<T>::iterator it) {
        if (it == items_.begin())
            items_.pop_front();
        else
            items_.erase(it);
    }

    [[nodiscard]] std::size_t weigh(const T& value) const noexcept { return cost_ ? cost_(value) : 0; }

    static bool matches(const T& value, match_fn match, std::uint64_t key) noexcept {
        return !match || match(value, key);
    }

    std::deque<T> items_;
    cost_fn cost_;
    std::size_t queued_cost_ = 0;
    bool closed_ = false;
    detail::parked_list waiters_;
};

}  // namespace cluster::io
