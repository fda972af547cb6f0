// Structured concurrency: scope spawn/join/request_stop/destruction, when_all, when_any,
// with_timeout for tasks, and sync_wait with and without an io_context of its own.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>

#include "support/descriptors.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;

namespace {

using support::make_socketpair;

// Counts the frames that were destroyed: proof that a task's frame was reclaimed.
struct frame_guard {
    int* destroyed;
    ~frame_guard() { ++*destroyed; }
};

task<void> read_byte_then_count(int fd, int& done) {
    char c;
    auto r = co_await io::read(fd, std::span(&c, 1));
    if (r && *r == 1) ++done;
}

task<void> read_and_record(int fd, std::vector<std::error_code>& results, int& destroyed) {
    frame_guard g{&destroyed};
    char buf[8];
    auto r = co_await io::read(fd, buf);
    results.push_back(r ? std::error_code{} : r.error());
}

task<void> nops_then_count(int n, int& done) {
    for (int i = 0; i < n; ++i) (void)co_await io::nop();
    ++done;
}

task<void> fail_after(int nops, const char* what) {
    for (int i = 0; i < nops; ++i) (void)co_await io::nop();
    throw std::runtime_error(what);
}

task<int> value_after(int nops, int v) {
    for (int i = 0; i < nops; ++i) (void)co_await io::nop();
    co_return v;
}

task<std::error_code> read_forever(int fd) {
    char buf[8];
    auto r = co_await io::read(fd, buf);
    co_return r ? std::error_code{} : r.error();
}

}  // namespace

TEST_CASE("scope: join waits for every spawned task") {
    auto body = []() -> task<int> {
        int done = 0;
        scope s;
        for (int i = 0; i < 500; ++i) s.spawn(nops_then_count(i % 7, done));
        CHECK(s.size() > 0);
        co_await s.join();
        CHECK(s.size() == 0);
        co_return done;
    };
    CHECK(sync_wait(body()) == 500);

    // Tasks that finish only when data arrives, in an order unrelated to spawning.
    auto sp = make_socketpair(SOCK_DGRAM);
    auto readers = [](int fd, int peer) -> task<int> {
        int done = 0;
        scope s;
        for (int i = 0; i < 20; ++i) s.spawn(read_byte_then_count(fd, done));
        CHECK(done == 0);
        CHECK(s.size() == 20);
        auto writer = [](int p) -> task<void> {
            for (int i = 0; i < 20; ++i) (void)co_await io::write(p, std::string_view("x"));
        };
        s.spawn(writer(peer));
        co_await s.join();
        co_return done;
    };
    CHECK(sync_wait(readers(sp[0].get(), sp[1].get())) == 20);

    // Joining an empty scope does not wait.
    auto empty = []() -> task<bool> {
        scope s;
        co_await s.join();
        co_return true;
    };
    CHECK(sync_wait(empty()));
}

TEST_CASE("scope: an exception from a spawned task is rethrown from join, after the others finish") {
    auto body = [](int& done) -> task<void> {
        scope s;
        s.spawn(nops_then_count(5, done));
        s.spawn(fail_after(1, "first"));
        s.spawn(fail_after(3, "second"));
        s.spawn(nops_then_count(10, done));
        co_await s.join();
    };
    int done = 0;
    CHECK_THROWS_WITH(sync_wait(body(done)), "first");
    CHECK(done == 2);
}

TEST_CASE("scope: request_stop cancels the pending ops of spawned tasks") {
    auto sp = make_socketpair();
    auto body = [](int fd) -> task<void> {
        std::vector<std::error_code> results;
        int destroyed = 0;
        scope s;
        for (int i = 0; i < 10; ++i) s.spawn(read_and_record(fd, results, destroyed));
        (void)co_await io::nop();
        CHECK(s.size() == 10);
        s.request_stop();
        CHECK(s.stop_token().stop_requested());
        co_await s.join();
        REQUIRE(results.size() == 10);
        for (auto& ec : results) CHECK(ec == std::errc::operation_canceled);
        CHECK(destroyed == 10);
    };
    sync_wait(body(sp[0].get()));
}

TEST_CASE("scope: destroying a scope with running tasks cancels and reclaims them") {
    io_context ctx;
    auto sp = make_socketpair();
    std::vector<std::error_code> results;
    int destroyed = 0;
    {
        scope s;
        for (int i = 0; i < 10; ++i) s.spawn(read_and_record(sp[0].get(), results, destroyed));
        ctx.run_until(value_after(1, 0));  // the reads are in the kernel now
        CHECK(s.size() == 10);
        CHECK(ctx.in_flight() == 10);
    }
    CHECK(destroyed == 10);  // every frame reclaimed
    CHECK(results.empty());  // none of them was resumed
    ctx.run_until(value_after(1, 0));
    CHECK(ctx.in_flight() == 0);
    // The socket is free of stale reads.
    REQUIRE(::write(sp[1].get(), "x", 1) == 1);
    char c;
    CHECK(::recv(sp[0].get(), &c, 1, MSG_DONTWAIT) == 1);
}

TEST_CASE("when_all: values in order, void as monostate, references") {
    auto body = []() -> task<void> {
        auto [a, b, c] = co_await when_all(value_after(3, 1), value_after(0, 2), value_after(1, 3));
        CHECK(a == 1);
        CHECK(b == 2);
        CHECK(c == 3);

        int done = 0;
        auto [v, s] = co_await when_all(nops_then_count(2, done), []() -> task<std::string> {
            (void)co_await io::nop();
            co_return std::string(50, 's');
        }());
        static_assert(std::is_same_v<decltype(v), std::monostate>);
        CHECK(done == 1);
        CHECK(s == std::string(50, 's'));

        int x = 0, y = 0;
        auto ref = [](int& r) -> task<int&> {
            (void)co_await io::nop();
            co_return r;
        };
        auto [rx, ry] = co_await when_all(ref(x), ref(y));
        static_assert(std::is_same_v<decltype(rx), std::reference_wrapper<int>>);
        CHECK(&rx.get() == &x);
        CHECK(&ry.get() == &y);
        rx.get() = 7;
        CHECK(x == 7);
    };
    sync_wait(body());
}

TEST_CASE("when_all over a vector of tasks") {
    auto body = []() -> task<void> {
        std::vector<task<int>> tasks;
        for (int i = 0; i < 100; ++i) tasks.push_back(value_after(i % 5, i));
        auto values = co_await when_all(std::move(tasks));
        REQUIRE(values.size() == 100);
        for (int i = 0; i < 100; ++i) CHECK(values[i] == i);

        std::vector<task<int>> none;
        auto empty = co_await when_all(std::move(none));
        CHECK(empty.empty());

        int done = 0;
        std::vector<task<void>> voids;
        for (int i = 0; i < 10; ++i) voids.push_back(nops_then_count(i, done));
        auto vs = co_await when_all(std::move(voids));
        CHECK(vs.size() == 10);
        CHECK(done == 10);
    };
    sync_wait(body());
}

TEST_CASE("when_all: an exception is rethrown only after every other task finished") {
    auto body = [](int& done) -> task<void> {
        (void)co_await when_all(fail_after(0, "early"), nops_then_count(20, done), value_after(10, 1),
                                fail_after(5, "later"));
    };
    int done = 0;
    CHECK_THROWS_WITH(sync_wait(body(done)), "early");
    CHECK(done == 1);  // the slow sibling ran to its end before the exception came out

    auto vec = [](int& d) -> task<void> {
        std::vector<task<void>> ts;
        ts.push_back(nops_then_count(10, d));
        ts.push_back(fail_after(2, "in vector"));
        (void)co_await when_all(std::move(ts));
    };
    done = 0;
    CHECK_THROWS_WITH(sync_wait(vec(done)), "in vector");
    CHECK(done == 1);
}

TEST_CASE("when_any: the first to finish wins, the losers are cancelled and awaited") {
    auto sp = make_socketpair();
    auto body = [](int fd) -> task<void> {
        std::error_code loser_saw;
        auto loser = [](int f, std::error_code& saw) -> task<int> {
            saw = co_await read_forever(f);
            co_return -1;
        };
        auto first = co_await when_any(value_after(2, 42), loser(fd, loser_saw));
        REQUIRE(first.index() == 0);
        CHECK(std::get<0>(first) == 42);
        CHECK(loser_saw == std::errc::operation_canceled);  // finished before when_any returned

        // The winner at another index, with other value types.
        std::error_code saw2;
        auto w = co_await when_any(loser(fd, saw2), value_after(0, 5), value_after(3, 6));
        CHECK(w.index() == 1);
        CHECK(std::get<1>(w) == 5);
        CHECK(saw2 == std::errc::operation_canceled);

        int done = 0;
        auto v = co_await when_any(read_forever(fd), nops_then_count(1, done));
        CHECK(v.index() == 1);
        CHECK(done == 1);
        auto single = co_await when_any(value_after(0, 9));  // a single task
        CHECK(std::get<0>(single) == 9);
    };
    sync_wait(body(sp[0].get()));
    // No stale read left in the kernel.
    REQUIRE(::write(sp[1].get(), "x", 1) == 1);
    char c;
    CHECK(::recv(sp[0].get(), &c, 1, MSG_DONTWAIT) == 1);
}

TEST_CASE("when_any: a winner's exception is rethrown") {
    auto sp = make_socketpair();
    auto body = [](int fd) -> task<void> { (void)co_await when_any(read_forever(fd), fail_after(1, "winner threw")); };
    CHECK_THROWS_WITH(sync_wait(body(sp[0].get())), "winner threw");
}

TEST_CASE("with_timeout(task, d): the value in time, timed_out otherwise") {
    auto sp = make_socketpair();
    auto body = [](int fd) -> task<void> {
        auto fast = co_await with_timeout(value_after(2, 11), 10s);
        REQUIRE(fast.has_value());
        CHECK(*fast == 11);

        auto t0 = std::chrono::steady_clock::now();
        auto slow = co_await with_timeout(read_forever(fd), 30ms);
        auto elapsed = std::chrono::steady_clock::now() - t0;
        REQUIRE_FALSE(slow.has_value());
        CHECK(slow.error() == std::errc::timed_out);
        CHECK(elapsed >= 30ms);
        CHECK(elapsed < 5s);

        int done = 0;
        auto v = co_await with_timeout(nops_then_count(1, done), 10s);  // task<void> → result<void>
        CHECK(v.has_value());
        CHECK(done == 1);

        // Regression: a task<std::error_code> — value and error of the same type — did
        // not compile; its value must come back as the value, not as the error.
        auto failing = []() -> task<std::error_code> {
            (void)co_await io::nop();
            co_return std::make_error_code(std::errc::io_error);
        };
        auto e = co_await with_timeout(failing(), 10s);
        REQUIRE(e.has_value());
        CHECK(*e == std::errc::io_error);

        // A task of result<U> times out into result<U>, not result<result<U>>.
        auto res = []() -> task<result<int>> {
            (void)co_await io::nop();
            co_return 3;
        };
        auto r = co_await with_timeout(res(), 10s);
        static_assert(std::is_same_v<decltype(r), result<int>>);
        REQUIRE(r.has_value());
        CHECK(*r == 3);
    };
    sync_wait(body(sp[0].get()));
}

TEST_CASE("sync_wait makes an io_context when there is none and uses the current one otherwise") {
    auto where = []() -> task<io_context*> {
        (void)co_await io::nop();
        co_return io_context::current();
    };
    REQUIRE(io_context::current() == nullptr);
    io_context* used = sync_wait(where());
    CHECK(used != nullptr);
    CHECK(io_context::current() == nullptr);  // the temporary one is gone

    io_context ctx;
    CHECK(sync_wait(where()) == &ctx);
    CHECK(sync_wait(where()) == &ctx);
    CHECK(io_context::current() == &ctx);
}
