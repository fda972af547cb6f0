// cluster::asio::run: an asio::io_context run on the thread of the cluster loop that awaits it —
// the two loops take turns, both wait in Asio's reactor, and neither polls.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <coroutine>
#include <optional>
#include <stop_token>
#include <system_error>

#include <cluster/asio/detail/bridge.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/when_all.hpp>
#include <cluster/result.hpp>

namespace cluster::asio {

namespace detail {

// co_await on run()'s behalf: the awaiting coroutine is resumed once Asio's loop ends.
class run_awaiter {
public:
    explicit run_awaiter(shared_thread& thread) noexcept : thread_(thread) {}
    run_awaiter(const run_awaiter&) = delete;
    run_awaiter& operator=(const run_awaiter&) = delete;
    ~run_awaiter() {
        stop_.reset();
        if (runner_) thread_.abandon(runner_);
    }

    // As io_context::run() on a stopped context: nothing runs until it is restarted.
    bool await_ready() const noexcept { return thread_.asio().stopped(); }

    template <class Promise>
    void await_suspend(std::coroutine_handle<Promise> h) {
        thread_.start(h);
        runner_ = h;
        if (auto token = io::detail::awaiting_stop_token(h); token.stop_possible())
            stop_.emplace(std::move(token), stopper{&thread_.asio()});
    }

    void await_resume() {
        runner_ = {};
        stop_.reset();
        thread_.rethrow_what_a_handler_threw();
    }

private:
    // A stop asked of the awaiting task stops Asio's loop, as io_context::stop() does: handlers
    // not run yet stay queued for a later run (or for the context's destruction).
    struct stopper {
        boost::asio::io_context* asio;
        void operator()() const noexcept { asio->stop(); }
    };

    shared_thread& thread_;
    std::coroutine_handle<> runner_;
    std::optional<std::stop_callback<stopper>> stop_;
};

struct set_latch {
    io::latch* latch;
    void operator()() const noexcept { latch->set(); }
};

// Done `grace` after `stop` is requested.
inline io::task<void> grace_after(std::stop_token stop, std::chrono::milliseconds grace) {
    io::latch stopped;
    const std::stop_callback on_stop(stop, set_latch{&stopped});
    if (!co_await stopped.wait()) co_return;
    (void)co_await io::sleep_for(grace);
}

}  // namespace detail

// Runs `asio`'s handlers on this thread, taking turns with the cluster loop's work (heartbeats,
// messages, connections), until `asio` is stopped or runs out of work — as asio.run() would,
// were it alone. With nothing ready, both loops wait in Asio's reactor: the ring signals an
// eventfd it watches. An exception a handler throws leaves here, as from asio.run(); run()
// may then be awaited again. A stop asked of the awaiting task stops `asio`.
inline io::task<void> run(boost::asio::io_context& asio) {
    detail::run_awaiter running(detail::bridge_of(asio).thread_of(asio));
    co_await running;
}

// The same, and once `stop` is requested (a worker's stop_token(): it is leaving), `asio` has
// `grace` to run out of work — its handlers seeing the stop, its connections drained — before it
// is stopped: then the result is std::errc::timed_out, and what was still pending is destroyed
// with `asio`, never run.
inline io::task<result<void>> run(boost::asio::io_context& asio, std::stop_token stop,
                                  std::chrono::milliseconds grace) {
    auto first = co_await io::when_any(run(asio), detail::grace_after(std::move(stop), grace));
    if (first.index() == 1) co_return std::make_error_code(std::errc::timed_out);
    co_return result<void>{};
}

}  // namespace cluster::asio
