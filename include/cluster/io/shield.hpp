// cluster::io::shield: runs a task among a scope's tasks, out of its caller's reach: a stop
// asked of the caller ends the caller's wait, not the task, which finishes all the same.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <cluster/io/latch.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>

namespace cluster::io {

namespace detail {

template <class T>
struct shielded {
    std::optional<std::conditional_t<std::is_void_v<T>, std::monostate, T>> value;
    std::exception_ptr error;
    latch done;
};

template <class T>
task<void> run_shielded(task<T> t, std::shared_ptr<shielded<T>> out) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            out->value.emplace();
        } else {
            out->value.emplace(co_await std::move(t));
        }
    } catch (...) {
        out->error = std::current_exception();
    }
    out->done.set();
}

}  // namespace detail

// Starts `t` in `owner` and waits for its value or its exception. A stop asked of the
// caller ends the wait with std::system_error(operation_canceled) and leaves `t` running:
// for work that cancelled halfway would leave things worse than either end (a rolling
// reload that has started a new worker, say). Only `owner`'s own stop reaches `t`.
template <class T>
task<T> shield(scope& owner, task<T> t) {
    static_assert(!std::is_reference_v<T>, "cluster::io::shield: the task's value must outlive it");
    auto out = std::make_shared<detail::shielded<T>>();
    owner.spawn(detail::run_shielded(std::move(t), out));
    const bool finished = co_await out->done.wait();
    if (!finished)
        throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                                "cluster: stopped waiting for a shielded task, which goes on");
    if (out->error) std::rethrow_exception(out->error);
    if constexpr (!std::is_void_v<T>) co_return std::move(*out->value);
}

}  // namespace cluster::io
