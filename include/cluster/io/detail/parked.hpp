// cluster::io::detail::parked and parked_list: coroutines suspended until someone wakes them,
// the building block of queues and flags that tasks wait on.
#pragma once

#include <coroutine>
#include <optional>
#include <stop_token>

#include <cluster/io/io_context.hpp>
#include <cluster/io/task.hpp>

namespace cluster::io::detail {

class parked_list;

// A waiting coroutine. It is resumed through the loop, never inside the call that woke
// it (the waker's state stays consistent); it answers to its task's stop token (woken
// with `canceled` set); and it leaves its list, or its pending resumption, if destroyed.
class parked {
public:
    parked() = default;
    parked(parked&&) noexcept {}  // an awaiter may be moved before it suspends, never after
    parked& operator=(parked&&) = delete;
    ~parked();

    template <class Promise>
    void park(parked_list& list, std::coroutine_handle<Promise> awaiting);
    void wake() noexcept;
    // Called by the awaiter once resumed; true unless the stop token woke it.
    bool resumed() noexcept {
        posted_ = false;
        stop_.reset();
        return !canceled_;
    }

private:
    friend class parked_list;
    struct canceller {
        parked* self;
        void operator()() const noexcept {
            self->canceled_ = true;
            self->wake();
        }
    };

    parked_list* list_ = nullptr;
    parked* prev_ = nullptr;
    parked* next_ = nullptr;
    std::coroutine_handle<> handle_;
    io_context* ctx_ = nullptr;
    bool posted_ = false;
    bool canceled_ = false;
    std::optional<std::stop_callback<canceller>> stop_;
};

// Waiters in the order they came.
class parked_list {
public:
    parked_list() = default;
    parked_list(const parked_list&) = delete;
    parked_list& operator=(const parked_list&) = delete;
    // Waiters still here are forgotten: they stay suspended for their owners to destroy.
    ~parked_list() {
        while (head_) unlink(*head_);
    }

    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
    [[nodiscard]] parked* front() const noexcept { return head_; }
    [[nodiscard]] static parked* next(const parked& p) noexcept { return p.next_; }

    void wake_all() noexcept {
        while (head_) head_->wake();
    }

private:
    friend class parked;
    void push_back(parked& p) noexcept {
        p.list_ = this;
        p.prev_ = tail_;
        p.next_ = nullptr;
        (tail_ ? tail_->next_ : head_) = &p;
        tail_ = &p;
    }
    void unlink(parked& p) noexcept {
        (p.prev_ ? p.prev_->next_ : head_) = p.next_;
        (p.next_ ? p.next_->prev_ : tail_) = p.prev_;
        p.list_ = nullptr;
        p.prev_ = p.next_ = nullptr;
    }

    parked* head_ = nullptr;
    parked* tail_ = nullptr;
};

template <class Promise>
void parked::park(parked_list& list, std::coroutine_handle<Promise> awaiting) {
    handle_ = awaiting;
    ctx_ = &io_context::current_or_throw();
    list.push_back(*this);
    std::stop_token token = awaiting_stop_token(awaiting);
    // Already stopped: the callback runs here, and the resumption is posted.
    if (token.stop_possible()) stop_.emplace(std::move(token), canceller{this});
}

inline void parked::wake() noexcept {
    if (posted_ || !handle_) return;
    if (list_) list_->unlink(*this);
    posted_ = true;
    ctx_->post(handle_);
}

inline parked::~parked() {
    stop_.reset();
    if (list_) list_->unlink(*this);
    if (posted_) ctx_->cancel_post(handle_);
}

}  // namespace cluster::io::detail
