// cluster::asio::async_await: a cluster awaitable (a task, a worker's receive() or request(), an
// io op) as an Asio asynchronous operation — co_await async_await(w.receive(), asio::use_awaitable).
#pragma once

#include <boost/asio/async_result.hpp>

#include <exception>
#include <type_traits>
#include <utility>

#include <cluster/asio/detail/for_handler.hpp>
#include <cluster/io/task.hpp>

namespace cluster::asio {

namespace detail {

template <class T>
inline constexpr bool is_task = false;
template <class T>
inline constexpr bool is_task<io::task<T>> = true;

template <class Awaitable>
struct awaited {
    using type = std::decay_t<decltype(std::declval<Awaitable>().await_resume())>;
};
template <class T>
struct awaited<io::task<T>> {
    using type = std::decay_t<T>;
};

template <class T, class Awaitable>
io::task<T> awaiting(Awaitable a) {
    co_return co_await std::move(a);
}

// Any cluster awaitable as a task, which the cluster loop can run for a handler.
template <class Awaitable>
auto as_task(Awaitable&& a) {
    using decayed = std::decay_t<Awaitable>;
    if constexpr (is_task<decayed>)
        return std::forward<Awaitable>(a);
    else
        return awaiting<typename awaited<decayed>::type>(decayed(std::forward<Awaitable>(a)));
}

template <class T>
struct await_signature {
    static_assert(std::is_default_constructible_v<T>,
                  "cluster::asio::async_await: Asio completes with (exception_ptr, T), and needs a T to pass with an "
                  "exception: T must be default-constructible");
    using type = void(std::exception_ptr, T);
};
template <>
struct await_signature<void> {
    using type = void(std::exception_ptr);
};

// Completes a handler of await_signature with what the task ended with.
struct pass_outcome {
    template <class Handler, class T>
    void operator()(Handler&& h, outcome<T>&& o) const {
        if constexpr (std::is_void_v<T>)
            std::forward<Handler>(h)(o.error);
        else
            std::forward<Handler>(h)(o.error, o.value ? std::move(*o.value) : T{});
    }
};

struct initiate_await {
    template <class Handler, class T>
    void operator()(Handler&& handler, io::task<T> t) const {
        start_for_handler(std::move(t), std::forward<Handler>(handler), pass_outcome{});
    }
};

}  // namespace detail

// Starts `awaitable` on the cluster loop that shares this thread (cluster::asio::run), at once,
// and completes with (std::exception_ptr, T) — T its value, (std::exception_ptr) if it has none.
// The handler's executor (an asio::awaitable's own, or one bound) counts it as work until then;
// its cancellation slot asks the awaitable to stop (ops end with operation_canceled). Cluster
// results stay values: async_await(w.request<R>(q, 2s), use_awaitable) gives a cluster::result<R>.
template <class Awaitable, class CompletionToken>
auto async_await(Awaitable&& awaitable, CompletionToken&& token) {
    auto t = detail::as_task(std::forward<Awaitable>(awaitable));
    using value = typename decltype(t)::value_type;
    using signature = typename detail::await_signature<std::decay_t<value>>::type;
    return boost::asio::async_initiate<CompletionToken, signature>(detail::initiate_await{}, token, std::move(t));
}

}  // namespace cluster::asio
