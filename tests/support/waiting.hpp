// support: one limit on every wait a test makes, so that a bug fails the test instead of
// hanging it, and the checks that no process outlived a test.
#pragma once

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <stop_token>
#include <system_error>
#include <type_traits>
#include <utility>

#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/result.hpp>

namespace support {

using namespace std::chrono_literals;

// Long enough for a loaded CI machine under ASan; a bug fails there instead of hanging.
inline constexpr std::chrono::milliseconds wait_limit = 10s;

// Awaits t, failing the test if it takes longer than `limit` (saying it waited for `what`).
// A task of result<U> gives its other failures back for the caller to check.
template <class T>
cluster::task<T> bounded(cluster::task<T> t, std::chrono::milliseconds limit = wait_limit, const char* what = "it") {
    auto r = co_await cluster::with_timeout(std::move(t), limit);
    if (!r && r.error() == std::errc::timed_out)
        FAIL("gave up waiting for " << what << " after " << limit.count() << " ms");
    if constexpr (cluster::is_result_v<T>)
        co_return r;
    else if constexpr (!std::is_void_v<T>)
        co_return std::move(*r);
}

template <class T>
cluster::task<T> bounded(cluster::task<T> t, const char* what) {
    return bounded(std::move(t), wait_limit, what);
}

// Runs t under `token`: a scope gives the tasks it spawns its own, and a test that spawns
// one to stop it later gives it this.
inline cluster::task<void> under(std::stop_token token, cluster::task<void> t) {
    co_await std::move(t).with_stop_token(std::move(token));
}

inline cluster::task<void> joined(cluster::scope& s) { co_await s.join(); }

// No child of this process is left, not even one waiting to be reaped.
inline bool no_children() {
    siginfo_t info{};
    return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

inline bool process_gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

}  // namespace support
