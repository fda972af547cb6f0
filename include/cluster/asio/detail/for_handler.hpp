// cluster::asio::detail::start_for_handler: a cluster task run for an Asio handler — counted as its
// executor's work, stopped by its cancellation slot, and completing it on that executor.
#pragma once

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/system_executor.hpp>

#include <exception>
#include <optional>
#include <stop_token>
#include <type_traits>
#include <utility>

#include <cluster/asio/detail/bridge.hpp>
#include <cluster/io/task.hpp>

namespace cluster::asio::detail {

// What a task ended with: its value (nothing for void), or what it threw.
template <class T>
struct outcome {
    std::exception_ptr error;
    std::optional<T> value;
};
template <>
struct outcome<void> {
    std::exception_ptr error;
};

// Requests a stop of the task when the handler's cancellation slot is signalled (any type: the
// task's ops then end with operation_canceled), and leaves the slot as the task ends.
template <class Slot>
class stop_on_cancel {
public:
    stop_on_cancel(Slot slot, std::stop_source& stop) : slot_(std::move(slot)) {
        if (slot_.is_connected()) slot_.template emplace<requester>(&stop);
    }
    stop_on_cancel(const stop_on_cancel&) = delete;
    stop_on_cancel& operator=(const stop_on_cancel&) = delete;
    ~stop_on_cancel() { release(); }
    void release() noexcept {
        if (slot_.is_connected()) slot_.clear();
    }

private:
    // Made by the slot with parentheses, which clang 14 does not take for an aggregate.
    struct requester {
        explicit requester(std::stop_source* s) noexcept : stop(s) {}
        std::stop_source* stop;
        void operator()(boost::asio::cancellation_type) const noexcept { stop->request_stop(); }
    };
    Slot slot_;
};

template <class T>
io::task<outcome<T>> outcome_of(io::task<T> t, std::stop_token stop) {
    outcome<T> o;
    try {
        if constexpr (std::is_void_v<T>)
            co_await std::move(t).with_stop_token(std::move(stop));
        else
            o.value.emplace(co_await std::move(t).with_stop_token(std::move(stop)));
    } catch (...) {
        o.error = std::current_exception();
    }
    co_return o;
}

// The task of start_for_handler(). Its parameters live in its frame: the handler is destroyed
// after the slot's guard, which clears the slot before the signal behind it can go.
template <class T, class Handler, class Executor, class Finish>
io::task<void> run_for_handler(io::task<T> t, Handler handler, Executor executor, Finish finish) {
    const auto work = boost::asio::prefer(std::move(executor), boost::asio::execution::outstanding_work.tracked);
    std::stop_source stop;
    stop_on_cancel guard(boost::asio::get_associated_cancellation_slot(handler), stop);
    auto ended = co_await outcome_of(std::move(t), stop.get_token());
    guard.release();
    boost::asio::post(work, [h = std::move(handler), f = std::move(finish), o = std::move(ended)]() mutable {
        std::move(f)(std::move(h), std::move(o));
    });
}

// Runs `t` on this thread's cluster loop for `handler`, which `finish(handler, outcome<T>)`
// completes, posted to the handler's executor (or `io_executor`, the I/O object's, if it has
// none). The task starts at once, here.
template <class T, class Handler, class Finish, class IoExecutor = boost::asio::system_executor>
void start_for_handler(io::task<T> t, Handler&& handler, Finish finish, const IoExecutor& io_executor = {}) {
    auto executor = boost::asio::get_associated_executor(handler, io_executor);
    static_assert(!std::is_same_v<decltype(executor), boost::asio::system_executor>,
                  "cluster::asio: the handler needs an executor of the asio::io_context that shares the cluster "
                  "loop's thread: await from an asio::awaitable, or bind one (asio::bind_executor)");
    auto& context = boost::asio::query(executor, boost::asio::execution::context);
    bridge_of(context).spawn(
        run_for_handler(std::move(t), std::forward<Handler>(handler), std::move(executor), std::move(finish)));
}

}  // namespace cluster::asio::detail
