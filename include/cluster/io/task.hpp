// cluster::io::task<T>: a lazy, move-only coroutine that produces T (or T&, or nothing).
// Awaiting starts it; completion resumes the awaiter by symmetric transfer.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <cluster/io/detail/frame_pool.hpp>
#include <cluster/io/detail/trampoline.hpp>

namespace cluster::io {

template <class T = void>
class task;

namespace detail {

// What every task promise shares: who awaits it and which stop token it answers to.
// A task inherits its awaiter's stop token, so cancelling a parent reaches the ops of
// every task it is awaiting (see io/op.hpp).
class task_promise_base {
public:
    static void* operator new(std::size_t size) { return frame_pool::allocate(size); }
    static void operator delete(void* frame, std::size_t size) noexcept { frame_pool::deallocate(frame, size); }

    std::suspend_always initial_suspend() noexcept { return {}; }

    struct final_awaiter {
        bool await_ready() noexcept { return false; }
        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
            return transfer_to(self.promise().continuation_);
        }
        void await_resume() noexcept {}
    };
    final_awaiter final_suspend() noexcept { return {}; }

    void set_continuation(std::coroutine_handle<> c) noexcept { continuation_ = c; }
    const std::stop_token& stop_token() const noexcept { return *stop_token_; }
    void set_stop_token(std::stop_token token) noexcept {
        own_stop_token_ = std::move(token);
        stop_token_ = &own_stop_token_;
    }
    // Answers to `token` without a copy of it: a copy is an atomic increment and decrement per
    // co_await when the token has a stop state. `token` is an awaiting task's, or the token
    // of one further up that awaits it; either is suspended until this task is done.
    void share_stop_token(const std::stop_token& token) noexcept { stop_token_ = &token; }

private:
    std::coroutine_handle<> continuation_ = std::noop_coroutine();
    const std::stop_token* stop_token_ = &own_stop_token_;
    std::stop_token own_stop_token_;
};

// The result is a union, not a std::variant: a variant's emplace and destructor each switch
// on the index, which was a quarter of what a co_await of a ready task cost with clang++.
template <class T>
class task_promise final : public task_promise_base {
public:
    task_promise() noexcept {}
    task_promise(const task_promise&) = delete;
    task_promise& operator=(const task_promise&) = delete;
    ~task_promise() {
        if (holds_ == holds::value)
            std::destroy_at(&value_);
        else if (holds_ == holds::error)
            std::destroy_at(&error_);
    }

    task<T> get_return_object() noexcept;
    template <class U>
        requires std::is_convertible_v<U&&, T>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        std::construct_at(&value_, std::forward<U>(value));
        holds_ = holds::value;
    }
    void unhandled_exception() noexcept {
        std::construct_at(&error_, std::current_exception());
        holds_ = holds::error;
    }

    T take() {
        if (holds_ == holds::error) std::rethrow_exception(error_);
        return std::move(value_);
    }

private:
    enum class holds : unsigned char { nothing, value, error };
    union {
        T value_;
        std::exception_ptr error_;
    };
    holds holds_ = holds::nothing;
};

template <class T>
class task_promise<T&> final : public task_promise_base {
public:
    task<T&> get_return_object() noexcept;
    void return_value(T& value) noexcept { value_ = std::addressof(value); }
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }
    T& take() {
        if (exception_) std::rethrow_exception(exception_);
        return *value_;
    }

private:
    T* value_ = nullptr;
    std::exception_ptr exception_;
};

template <>
class task_promise<void> final : public task_promise_base {
public:
    task<void> get_return_object() noexcept;
    void return_void() noexcept {}
    void unhandled_exception() noexcept { exception_ = std::current_exception(); }
    void take() {
        if (exception_) std::rethrow_exception(exception_);
    }

private:
    std::exception_ptr exception_;
};

inline const std::stop_token no_stop_token;

// The stop token of the coroutine doing the awaiting, when it is a task; a coroutine
// of another kind answers to no stop token.

template <class Promise>
const std::stop_token& awaiting_stop_token(std::coroutine_handle<Promise> h) noexcept {
    if constexpr (std::is_base_of_v<task_promise_base, Promise>)
        return h.promise().stop_token();
    else
        return no_stop_token;
}

}  // namespace detail

template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using value_type = T;

    task() noexcept = default;
    explicit task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
    task(task&& other) noexcept
        : handle_(std::exchange(other.handle_, {})), token_fixed_(std::exchange(other.token_fixed_, false)) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            destroy();
            handle_ = std::exchange(other.handle_, {});
            token_fixed_ = std::exchange(other.token_fixed_, false);
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() { destroy(); }

    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }
    [[nodiscard]] bool done() const noexcept { return handle_ && handle_.done(); }

    // Runs the task under `token` instead of the token of whoever awaits it.
    task& with_stop_token(std::stop_token token) & noexcept {
        handle_.promise().set_stop_token(std::move(token));
        token_fixed_ = true;
        return *this;
    }
    task&& with_stop_token(std::stop_token token) && noexcept { return std::move(with_stop_token(std::move(token))); }

    auto operator co_await() && noexcept { return awaiter{handle_, token_fixed_}; }
    auto operator co_await() & noexcept { return awaiter{handle_, token_fixed_}; }

    // For the runtime's own drivers (sync_wait, scopes): start and inspect by hand.
    [[nodiscard]] std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }

private:
    struct awaiter {
        std::coroutine_handle<promise_type> h;
        bool token_fixed;

        bool await_ready() const noexcept { return false; }
        template <class Awaiting>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Awaiting> awaiting) noexcept {
            h.promise().set_continuation(awaiting);
            if (!token_fixed) h.promise().share_stop_token(detail::awaiting_stop_token(awaiting));
            return detail::transfer_to(h);
        }
        decltype(auto) await_resume() { return h.promise().take(); }
    };

    void destroy() noexcept {
        if (handle_) handle_.destroy();
        handle_ = {};
    }

    std::coroutine_handle<promise_type> handle_;
    bool token_fixed_ = false;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
template <class T>
task<T&> task_promise<T&>::get_return_object() noexcept {
    return task<T&>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>{std::coroutine_handle<task_promise>::from_promise(*this)};
}
}  // namespace detail

namespace detail {
struct stop_token_awaiter {
    std::stop_token token;
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) noexcept {
        token = awaiting_stop_token(h);
        return false;
    }
    std::stop_token await_resume() noexcept { return std::move(token); }
};
}  // namespace detail

// co_await current_stop_token(): the awaiting task's own stop token, for code that must
// answer it and a second one at once (combine them in a std::stop_source).
[[nodiscard]] inline detail::stop_token_awaiter current_stop_token() noexcept { return {}; }

}  // namespace cluster::io
