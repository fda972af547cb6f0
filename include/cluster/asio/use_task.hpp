// cluster::asio::use_task: the completion token that makes an Asio operation something a
// cluster::task awaits — co_await timer.async_wait(cluster::asio::use_task) — with its stop token.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/system/error_code.hpp>

#include <coroutine>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>

#include <cluster/io/io_context.hpp>
#include <cluster/io/task.hpp>
#include <cluster/result.hpp>

namespace cluster::asio {

struct use_task_t {
    constexpr use_task_t() noexcept = default;
};

// co_await on any Asio operation started with it yields, by the operation's signature:
//   void()                      nothing
//   void(error_code)            cluster::result<void>
//   void(error_code, T...)      cluster::result<T> (several values: a tuple)
//   void(exception_ptr, T...)   T (the exception rethrown)
//   void(T...)                  T
// The operation is cancelled (terminal) when the awaiting task is asked to stop.
inline constexpr use_task_t use_task{};

namespace detail {

// A completion's values after the first.
template <class Tuple>
auto tail(Tuple&& t) {
    return std::apply([](auto&&, auto&&... rest) { return std::make_tuple(std::move(rest)...); },
                      std::forward<Tuple>(t));
}

template <class... Values>
struct values_of {
    using type = std::tuple<Values...>;
    template <class Tuple>
    static type take(Tuple&& t) {
        return std::forward<Tuple>(t);
    }
};
template <class Value>
struct values_of<Value> {
    using type = Value;
    template <class Tuple>
    static type take(Tuple&& t) {
        return std::get<0>(std::forward<Tuple>(t));
    }
};
template <>
struct values_of<> {
    using type = void;
    template <class Tuple>
    static void take(Tuple&&) noexcept {}
};

template <class... Args>
struct completion_of : values_of<Args...> {
    template <class Tuple>
    static auto resume(Tuple&& t) {
        return values_of<Args...>::take(std::forward<Tuple>(t));
    }
};

template <class... Rest>
struct completion_of<boost::system::error_code, Rest...> {
    using value = typename values_of<Rest...>::type;
    using type = result<value>;
    template <class Tuple>
    static type resume(Tuple&& t) {
        const std::error_code error = std::get<0>(t);
        if (error) return error;
        if constexpr (std::is_void_v<value>)
            return {};
        else
            return values_of<Rest...>::take(tail(std::forward<Tuple>(t)));
    }
};

template <class... Rest>
struct completion_of<std::exception_ptr, Rest...> {
    using type = typename values_of<Rest...>::type;
    template <class Tuple>
    static type resume(Tuple&& t) {
        if (std::get<0>(t)) std::rethrow_exception(std::get<0>(t));
        return values_of<Rest...>::take(tail(std::forward<Tuple>(t)));
    }
};

// What the operation's handler and the awaiting coroutine share: the handler may outlive the
// coroutine (destroyed mid-wait), and the signal must outlive the operation's use of its slot.
template <class... Args>
struct operation_state {
    std::optional<std::tuple<Args...>> args;
    std::coroutine_handle<> waiter;
    io::io_context* loop = nullptr;
    bool abandoned = false;  // the awaiting coroutine is gone
    bool posted = false;     // its resumption is on the loop's ready queue
    boost::asio::cancellation_signal cancel;
};

template <class... Args>
struct resume_handler {
    std::shared_ptr<operation_state<Args...>> state;

    using cancellation_slot_type = boost::asio::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept { return state->cancel.slot(); }

    template <class... Values>
    void operator()(Values&&... values) {
        state->args.emplace(std::forward<Values>(values)...);
        if (state->abandoned) return;
        state->posted = true;
        state->loop->post(state->waiter);
    }
};

// The awaitable an initiating function returns for use_task: it starts the operation as the
// awaiting coroutine suspends.
template <class Initiation, class InitArgs, class... Args>
class operation {
    using state_type = operation_state<std::decay_t<Args>...>;
    using completion = completion_of<std::decay_t<Args>...>;

public:
    operation(Initiation init, InitArgs args) : init_(std::move(init)), args_(std::move(args)) {}
    operation(operation&&) = default;
    operation& operator=(operation&&) = delete;
    ~operation() {
        stop_.reset();
        if (!state_ || state_->args) {
            if (state_ && state_->posted) state_->loop->cancel_post(state_->waiter);
            return;
        }
        state_->abandoned = true;
        state_->cancel.emit(boost::asio::cancellation_type::terminal);
    }

    bool await_ready() const noexcept { return false; }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        state_ = std::make_shared<state_type>();
        state_->waiter = h;
        state_->loop = &io::io_context::current_or_throw();
        std::apply(
            [&](auto&&... a) { std::move(init_)(resume_handler<std::decay_t<Args>...>{state_}, std::move(a)...); },
            std::move(args_));
        if (auto token = io::detail::awaiting_stop_token(h); token.stop_possible())
            stop_.emplace(std::move(token), canceller{state_.get()});
    }

    auto await_resume() {
        stop_.reset();
        state_->posted = false;
        return completion::resume(std::move(*state_->args));
    }

private:
    struct canceller {
        state_type* state;
        void operator()() const { state->cancel.emit(boost::asio::cancellation_type::terminal); }
    };

    Initiation init_;
    InitArgs args_;
    std::shared_ptr<state_type> state_;
    std::optional<std::stop_callback<canceller>> stop_;
};

}  // namespace detail

}  // namespace cluster::asio

template <class R, class... Args>
struct boost::asio::async_result<cluster::asio::use_task_t, R(Args...)> {
    template <class Initiation, class... InitArgs>
    static auto initiate(Initiation&& init, cluster::asio::use_task_t, InitArgs&&... args) {
        return cluster::asio::detail::operation<std::decay_t<Initiation>, std::tuple<std::decay_t<InitArgs>...>,
                                                Args...>(std::forward<Initiation>(init),
                                                         std::make_tuple(std::forward<InitArgs>(args)...));
    }
};
