// cluster::io::sync_wait: runs a task to completion from ordinary code and returns its value,
// on this thread's io_context or, when there is none, on one made for the occasion.
#pragma once

#include <utility>

#include <cluster/io/io_context.hpp>
#include <cluster/io/task.hpp>

namespace cluster::io {

template <class T>
T sync_wait(task<T> t) {
    if (io_context* ctx = io_context::current()) return ctx->run_until(std::move(t));
    io_context ctx;
    return ctx.run_until(std::move(t));
}

// Any other awaitable (an op, a channel's receive) is awaited from a task made for it.
template <class Awaitable>
decltype(auto) sync_wait(Awaitable&& awaitable) {
    using value = decltype(std::declval<Awaitable&&>().await_resume());
    return sync_wait([](Awaitable&& a) -> task<value> {
        co_return co_await std::forward<Awaitable>(a);
    }(std::forward<Awaitable>(awaitable)));
}

}  // namespace cluster::io
