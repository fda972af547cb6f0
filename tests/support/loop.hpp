// support: a test's body run on a loop of its own, and an awaitable that lets that loop turn
// once — for the tests of what tasks share on one thread (locks, mailboxes, shields).
#pragma once

#include <coroutine>

#include <cluster/io.hpp>

namespace support {

// Suspends until the next turn of the loop, behind everything posted before it.
struct next_turn {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { cluster::io_context::current_or_throw().post(h); }
    void await_resume() const noexcept {}
};

// Runs body() to its end on a new loop.
template <class Body>
void run_on_loop(Body body) {
    cluster::io_context ctx;
    cluster::sync_wait(body());
}

}  // namespace support
