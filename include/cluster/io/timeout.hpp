// cluster::io::with_timeout for tasks: a task that has not finished within a duration is
// asked to stop (its ops are cancelled) and the caller gets std::errc::timed_out.
#pragma once

#include <chrono>
#include <type_traits>
#include <utility>

#include <cluster/io/ops.hpp>
#include <cluster/io/when_all.hpp>
#include <cluster/result.hpp>

namespace cluster::io {

namespace detail {
// A task of result<U> times out into result<U> itself, not result<result<U>>.
template <class T>
using timed_result_t = std::conditional_t<is_result_v<T>, T, result<T>>;

template <class Rep, class Period>
task<void> expire_after(std::chrono::duration<Rep, Period> d) {
    (void)co_await io::sleep_for(d);
}
}  // namespace detail

template <class T, class Rep, class Period>
task<detail::timed_result_t<T>> with_timeout(task<T> t, std::chrono::duration<Rep, Period> d) {
    using timed = detail::timed_result_t<T>;
    auto first = co_await when_any(std::move(t), detail::expire_after(d));
    // In place, explicitly: for T = std::error_code, value and error have the same type.
    if (first.index() == 1) co_return timed(boost::system::in_place_error, std::make_error_code(std::errc::timed_out));
    if constexpr (std::is_void_v<T>)
        co_return timed{};
    else if constexpr (is_result_v<T>)
        co_return std::move(std::get<0>(first));
    else
        co_return timed(boost::system::in_place_value, std::move(std::get<0>(first)));
}

}  // namespace cluster::io
