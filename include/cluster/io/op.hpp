// cluster::io::basic_op: what every single-shot io_uring operation shares — submission,
// linked timeouts, cancellation through std::stop_token, and memory kept to the last CQE.
#pragma once

#include <linux/time_types.h>

#include <cerrno>
#include <chrono>
#include <coroutine>
#include <optional>
#include <stop_token>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/task.hpp>
#include <cluster/result.hpp>

namespace cluster::io {

template <class Rep, class Period>
__kernel_timespec to_timespec(std::chrono::duration<Rep, Period> d) noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    if (ns < 0) ns = 0;
    return {static_cast<long long>(ns / 1'000'000'000), static_cast<long long>(ns % 1'000'000'000)};
}

inline result<std::size_t> size_result(int res) noexcept {
    if (res < 0) return errno_code(-res);
    return static_cast<std::size_t>(res);
}

inline result<void> void_result(int res) noexcept {
    if (res < 0) return errno_code(-res);
    return {};
}

// Derived provides `void prepare(io_uring_sqe*)` (called once the op sits at its final
// address, so it may point the kernel into itself) and `Result complete(int res)`.
template <class Derived, class Result>
class basic_op : private detail::completion {
public:
    basic_op() noexcept { complete = &on_complete; }
    // Configuration moves; an op is never moved once it is awaited.
    basic_op(basic_op&& other) noexcept
        : detail::completion(other), timeout_(other.timeout_), token_(std::move(other.token_)),
          token_fixed_(other.token_fixed_) {}
    basic_op& operator=(basic_op&&) = delete;
    ~basic_op() {
        if (in_flight()) ctx_->cancel_and_wait(this, finished_);
    }

    // Fails the op with std::errc::timed_out unless it completes within `d` (a linked
    // timeout: the kernel cancels the op, no extra wake-up when it completes in time).
    template <class Rep, class Period>
    Derived&& with_timeout(std::chrono::duration<Rep, Period> d) && noexcept {
        timeout_ = to_timespec(d);
        return static_cast<Derived&&>(*this);
    }
    // Answers to `token` instead of the awaiting task's stop token.
    Derived&& with_stop_token(std::stop_token token) && noexcept {
        token_ = std::move(token);
        token_fixed_ = true;
        return static_cast<Derived&&>(*this);
    }

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> awaiting) {
        if (!token_fixed_) token_ = detail::awaiting_stop_token(awaiting);
        if (token_.stop_requested()) {
            res_ = -ECANCELED;
            return false;
        }
        ctx_ = &io_context::current_or_throw();
        ctx_->reserve(timeout_ ? 2 : 1);
        io_uring_sqe* sqe = ctx_->sqe(this);
        static_cast<Derived*>(this)->prepare(sqe);
        if (timeout_) {
            sqe->flags |= IOSQE_IO_LINK;
            io_uring_prep_link_timeout(ctx_->sqe(nullptr), &*timeout_, 0);
        }
        waiter_ = awaiting;
        if (token_.stop_possible()) stop_callback_.emplace(token_, canceller{this});
        return true;
    }

    Result await_resume() {
        stop_callback_.reset();
        if (res_ == -ECANCELED && timeout_ && !token_.stop_requested())
            return Result(std::make_error_code(std::errc::timed_out));
        return static_cast<Derived*>(this)->complete(res_);
    }

protected:
    [[nodiscard]] unsigned cqe_flags() const noexcept { return flags_; }

private:
    [[nodiscard]] bool in_flight() const noexcept { return ctx_ && !finished_; }

    struct canceller {
        basic_op* op;
        void operator()() const noexcept {
            if (op->in_flight()) op->ctx_->cancel(op);
        }
    };

    static void on_complete(detail::completion* self, int res, unsigned flags, bool resume) noexcept {
        auto* op = static_cast<basic_op*>(self);
        op->res_ = res;
        op->flags_ = flags;
        op->finished_ = true;
        if (resume) op->waiter_.resume();
    }

    std::optional<__kernel_timespec> timeout_;
    std::stop_token token_;
    bool token_fixed_ = false;

    io_context* ctx_ = nullptr;
    std::coroutine_handle<> waiter_;
    std::optional<std::stop_callback<canceller>> stop_callback_;
    bool finished_ = false;
    int res_ = 0;
    unsigned flags_ = 0;
};

// with_timeout(op, d) and with_stop_token(op, token), for any io op.
template <class Op, class Rep, class Period>
    requires requires(Op&& op, std::chrono::duration<Rep, Period> d) { std::move(op).with_timeout(d); }
Op with_timeout(Op&& op, std::chrono::duration<Rep, Period> d) {
    return std::move(op).with_timeout(d);
}

template <class Op>
    requires requires(Op&& op, std::stop_token t) { std::move(op).with_stop_token(t); }
Op with_stop_token(Op&& op, std::stop_token token) {
    return std::move(op).with_stop_token(std::move(token));
}

}  // namespace cluster::io
