// cluster::io::when_all and cluster::io::when_any: await several tasks at once. Both wait for
// every task to finish (nothing outlives them); when_any cancels the losers.
#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cluster/io/task.hpp>

namespace cluster::io {

namespace detail {

// What a task<T> leaves in a tuple or variant: void becomes std::monostate, T& a
// reference_wrapper.
template <class T>
using slot_value_t = std::conditional_t<
    std::is_void_v<T>, std::monostate,
    std::conditional_t<std::is_reference_v<T>, std::reference_wrapper<std::remove_reference_t<T>>, T>>;

template <class T>
struct slot {
    std::optional<slot_value_t<T>> value;
    std::exception_ptr error;

    slot_value_t<T> take() {
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }
};

struct join_state {
    std::size_t remaining = 0;
    std::coroutine_handle<> parent;
    std::stop_source stop;
    bool stop_on_first = false;        // when_any: the losers are asked to stop
    std::optional<std::size_t> first;  // who finished first
    std::stop_token stop_token() const noexcept { return stop.get_token(); }
};

// One per awaited task: runs it, fills its slot, and resumes the parent after the last.
struct join_driver {
    struct promise_type {
        join_state& state;
        std::size_t index;
        template <class T>
        promise_type(task<T>&, slot<T>&, join_state& s, std::size_t i) noexcept : state(s), index(i) {}

        join_driver get_return_object() noexcept { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        struct final_awaiter {
            bool await_ready() noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                join_state& s = h.promise().state;
                if (!s.first) {
                    s.first = h.promise().index;
                    if (s.stop_on_first) s.stop.request_stop();
                }
                if (--s.remaining == 0) return s.parent;
                return std::noop_coroutine();
            }
            void await_resume() noexcept {}
        };
        final_awaiter final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept {}
    };

    std::coroutine_handle<promise_type> handle;
};

template <class T>
join_driver drive(task<T>& t, slot<T>& out, join_state&, std::size_t) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await t;
            out.value.emplace();
        } else if constexpr (std::is_reference_v<T>) {
            out.value.emplace(std::ref(co_await t));
        } else {
            out.value.emplace(co_await t);
        }
    } catch (...) {
        out.error = std::current_exception();
    }
}

// Starts every driver, then suspends unless all of them already finished. The extra
// count held during the start keeps a synchronous finisher from resuming the parent early.
class join_awaiter_base {
public:
    bool await_ready() const noexcept { return false; }

protected:
    template <class Promise, class StartAll>
    bool suspend(std::coroutine_handle<Promise> parent, std::size_t count, std::stop_token parent_token,
                 StartAll start_all) {
        state_.parent = parent;
        state_.remaining = count + 1;
        if (parent_token.stop_possible()) forward_.emplace(std::move(parent_token), forward_stop{&state_.stop});
        start_all();
        return --state_.remaining != 0;
    }

    ~join_awaiter_base() {
        for (auto h : drivers_) h.destroy();
    }

    join_state state_;
    std::vector<std::coroutine_handle<join_driver::promise_type>> drivers_;

private:
    struct forward_stop {
        std::stop_source* target;
        void operator()() const noexcept { target->request_stop(); }
    };
    std::optional<std::stop_callback<forward_stop>> forward_;
};

template <class... Ts>
class all_awaiter : public join_awaiter_base {
public:
    explicit all_awaiter(task<Ts>&&... tasks) : tasks_(std::move(tasks)...) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        return suspend(parent, sizeof...(Ts), awaiting_stop_token(parent),
                       [&] { start(std::index_sequence_for<Ts...>{}); });
    }

protected:
    template <std::size_t... I>
    void start(std::index_sequence<I...>) {
        (start_one<I>(), ...);
    }
    template <std::size_t I>
    void start_one() {
        auto& t = std::get<I>(tasks_);
        t.with_stop_token(state_.stop_token());
        auto d = drive(t, std::get<I>(slots_), state_, I);
        drivers_.push_back(d.handle);
        d.handle.resume();
    }

    std::tuple<task<Ts>...> tasks_;
    std::tuple<slot<Ts>...> slots_;
};

template <class... Ts>
struct when_all_awaiter : all_awaiter<Ts...> {
    using all_awaiter<Ts...>::all_awaiter;
    std::tuple<slot_value_t<Ts>...> await_resume() {
        return std::apply([](auto&... s) { return std::tuple<slot_value_t<Ts>...>{s.take()...}; }, this->slots_);
    }
};

template <class... Ts>
struct when_any_awaiter : all_awaiter<Ts...> {
    explicit when_any_awaiter(task<Ts>&&... tasks) : all_awaiter<Ts...>(std::move(tasks)...) {
        this->state_.stop_on_first = true;
    }
    std::variant<slot_value_t<Ts>...> await_resume() { return pick<0>(); }

private:
    template <std::size_t I>
    std::variant<slot_value_t<Ts>...> pick() {
        if constexpr (I + 1 < sizeof...(Ts))
            if (*this->state_.first != I) return pick<I + 1>();
        return std::variant<slot_value_t<Ts>...>{std::in_place_index<I>, std::get<I>(this->slots_).take()};
    }
};

template <class T>
class when_all_range_awaiter : public join_awaiter_base {
public:
    explicit when_all_range_awaiter(std::vector<task<T>> tasks) : tasks_(std::move(tasks)), slots_(tasks_.size()) {}

    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> parent) {
        return suspend(parent, tasks_.size(), awaiting_stop_token(parent), [&] {
            for (std::size_t i = 0; i < tasks_.size(); ++i) {
                tasks_[i].with_stop_token(state_.stop_token());
                auto d = drive(tasks_[i], slots_[i], state_, i);
                drivers_.push_back(d.handle);
                d.handle.resume();
            }
        });
    }
    std::vector<slot_value_t<T>> await_resume() {
        std::vector<slot_value_t<T>> out;
        out.reserve(slots_.size());
        for (auto& s : slots_) out.push_back(s.take());
        return out;
    }

private:
    std::vector<task<T>> tasks_;
    std::vector<slot<T>> slots_;
};

}  // namespace detail

// Runs every task concurrently; their values in order (void → std::monostate). If any
// throws, the others still finish, then the first exception in argument order is rethrown.
template <class... Ts>
task<std::tuple<detail::slot_value_t<Ts>...>> when_all(task<Ts>... tasks) {
    co_return co_await detail::when_all_awaiter<Ts...>{std::move(tasks)...};
}

template <class T>
task<std::vector<detail::slot_value_t<T>>> when_all(std::vector<task<T>> tasks) {
    co_return co_await detail::when_all_range_awaiter<T>{std::move(tasks)};
}

// Runs every task concurrently; the first to finish wins (its index is the variant's).
// The others are asked to stop through their stop token and awaited before returning.
template <class... Ts>
task<std::variant<detail::slot_value_t<Ts>...>> when_any(task<Ts>... tasks) {
    co_return co_await detail::when_any_awaiter<Ts...>{std::move(tasks)...};
}

}  // namespace cluster::io
