// cluster::asio::async_wait(stop_token, token): a std::stop_token's request as an Asio operation —
// a worker's stop_token(), for Asio code to drain by (co_await (read || async_wait(stop, ...))).
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <stop_token>
#include <utility>

#include <cluster/asio/detail/for_handler.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/task.hpp>

namespace cluster::asio {

namespace detail {

struct set_on_stop {
    io::latch* latch;
    void operator()() const noexcept { latch->set(); }
};

// True once `stop` is requested; false if the awaiting task is asked to stop first.
inline io::task<bool> stop_requested(std::stop_token stop) {
    io::latch requested;
    const std::stop_callback on_stop(std::move(stop), set_on_stop{&requested});
    co_return co_await requested.wait();
}

struct pass_stop {
    template <class Handler>
    void operator()(Handler&& h, outcome<bool>&& o) const {
        const bool stopped = !o.error && o.value && *o.value;
        std::forward<Handler>(h)(stopped ? boost::system::error_code{}
                                         : boost::system::error_code(boost::asio::error::operation_aborted));
    }
};

struct initiate_stop_wait {
    template <class Handler>
    void operator()(Handler&& handler, std::stop_token stop) const {
        start_for_handler(stop_requested(std::move(stop)), std::forward<Handler>(handler), pass_stop{});
    }
};

}  // namespace detail

// Completes with no error once `stop` is requested (at once, after a post, if it already was);
// with asio::error::operation_aborted if cancelled first. The handler's executor is an Asio
// io_context's that shares the cluster loop's thread, as for async_await.
template <class CompletionToken>
auto async_wait(std::stop_token stop, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code)>(detail::initiate_stop_wait{},
                                                                                         token, std::move(stop));
}

}  // namespace cluster::asio
