// The primitives tasks wait on: mailbox<T> (order, push_front, matching, close, stops, waiters
// destroyed while waiting, resumption through the loop) and latch.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>

#include "support/loop.hpp"

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;

namespace {

// Runs body on a fresh loop with a fresh T to work on.
template <class T, class Body>
void run_on(Body body) {
    io_context ctx;
    T subject;
    sync_wait(body(subject));
}

bool is_even(const int& v, std::uint64_t) noexcept { return v % 2 == 0; }

// What a take gave, kept by the taking task itself: a with_timeout() or when_any() that
// stops it throws its value away.
struct taken {
    bool done = false;
    std::optional<int> value;
};

task<void> take_into(mailbox<int>& box, taken& got) {
    got.value = co_await box.take();
    got.done = true;
}

task<void> take_even_into(mailbox<int>& box, taken& got) {
    got.value = co_await box.take(&is_even);
    got.done = true;
}

task<void> take_then_flag(mailbox<int>& box, bool& resumed) {
    (void)co_await box.take();
    resumed = true;
}

task<void> push_now(mailbox<int>& box, int v) {
    box.push(v);
    co_return;
}

task<void> finish_now() { co_return; }

task<void> wait_into(latch& l, std::optional<bool>& got) { got = co_await l.wait(); }

}  // namespace

TEST_CASE("a mailbox hands items out in the order they came") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        for (int i = 0; i < 100; ++i) box.push(i);
        CHECK(box.size() == 100);
        for (int i = 0; i < 100; ++i) {
            auto v = co_await box.take();
            REQUIRE(v);
            CHECK(*v == i);
        }
        CHECK(box.size() == 0);

        // Takers that wait are served in the order they came, too.
        std::vector<taken> got(3);
        scope s;
        for (auto& g : got) s.spawn(take_into(box, g));
        for (int i = 0; i < 3; ++i) box.push(10 + i);
        co_await s.join();
        for (int i = 0; i < 3; ++i) CHECK(got[i].value == 10 + i);
    });
}

TEST_CASE("push_front queues an item before the others, or hands it to the oldest taker waiting") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        box.push(1);
        box.push(2);
        box.push_front(0);
        for (int i = 0; i < 3; ++i) {
            auto v = co_await box.take();
            CHECK(v == i);
        }

        std::vector<taken> got(2);
        scope s;
        for (auto& g : got) s.spawn(take_into(box, g));
        box.push_front(5);
        box.push(6);
        co_await s.join();
        CHECK(got[0].value == 5);
        CHECK(got[1].value == 6);

        box.close();
        box.push_front(7);  // dropped, as push() drops it
        CHECK(box.size() == 0);
    });
}

TEST_CASE("take with a match function picks the oldest match and leaves the rest queued") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        for (int v : {1, 3, 4, 5, 6}) box.push(v);
        auto even = co_await box.take(&is_even);
        CHECK(even == 4);
        CHECK(box.size() == 4);
        auto first = co_await box.take();
        CHECK(first == 1);

        // A waiting taker is handed only what it matches; the rest is queued for others.
        (void)box.try_take();
        (void)box.try_take();
        (void)box.try_take();
        REQUIRE(box.size() == 0);
        taken got;
        scope s;
        s.spawn(take_even_into(box, got));
        box.push(7);
        box.push(8);
        co_await s.join();
        CHECK(got.value == 8);
        CHECK(box.size() == 1);
        CHECK(box.try_take() == 7);
    });
}

TEST_CASE("after close() a mailbox delivers what was queued, then nothing") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        taken waiting;
        scope s;
        s.spawn(take_even_into(box, waiting));
        box.push(1);
        box.push(3);
        box.close();
        box.push(4);  // dropped: nobody can be waiting for it after close
        co_await s.join();
        CHECK(waiting.done);  // woken by close, with nothing
        CHECK_FALSE(waiting.value);
        CHECK(box.closed());
        CHECK(box.size() == 2);
        auto a = co_await box.take();
        auto b = co_await box.take();
        auto none = co_await box.take();
        CHECK(a == 1);
        CHECK(b == 3);
        CHECK_FALSE(none);
    });
}

TEST_CASE("a take stopped by with_timeout or when_any yields nothing and loses no later item") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        taken got;
        auto timed = co_await with_timeout(take_into(box, got), 1ms);
        CHECK(timed.error() == std::errc::timed_out);
        CHECK(got.done);
        CHECK_FALSE(got.value);
        box.push(5);
        CHECK(box.size() == 1);  // queued, not handed to the taker that gave up

        got = {};
        (void)box.try_take();
        auto first = co_await when_any(take_into(box, got), finish_now());
        CHECK(first.index() == 1);
        CHECK(got.done);
        CHECK_FALSE(got.value);
        box.push(6);
        auto later = co_await box.take();
        CHECK(later == 6);
    });
}

TEST_CASE("an item handed to a taker that is stopped before it runs goes back to the mailbox") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        taken got;
        scope s;
        s.spawn(take_into(box, got));
        box.push(7);
        box.push(9);
        s.request_stop();  // the taker holds 7 but has not run yet
        co_await s.join();
        CHECK_FALSE(got.value);
        REQUIRE(box.size() == 2);
        CHECK(box.try_take() == 7);  // back in front, ahead of what came after it
        CHECK(box.try_take() == 9);

        // when_any stops the take as soon as the pusher finishes: the take lost the race,
        // so the item it was handed is not thrown away with it.
        got = {};
        auto first = co_await when_any(take_into(box, got), push_now(box, 8));
        CHECK(first.index() == 1);
        CHECK_FALSE(got.value);
        CHECK(box.try_take() == 8);
    });
}

TEST_CASE("an item given back goes to a taker already waiting for it") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        taken stopped, waiting;
        scope first, second;
        first.spawn(take_into(box, stopped));
        second.spawn(take_into(box, waiting));
        box.push(5);  // handed to the first taker
        first.request_stop();
        co_await first.join();
        co_await second.join();
        CHECK_FALSE(stopped.value);
        CHECK(waiting.value == 5);
        CHECK(box.size() == 0);
    });
}

TEST_CASE("a task destroyed while waiting on a mailbox leaves it, woken or not") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        taken got;
        {
            scope s;
            s.spawn(take_into(box, got));
        }  // destroyed while parked
        box.push(1);
        box.push(2);
        CHECK(box.size() == 2);  // nobody left to hand them to
        (void)box.try_take();
        (void)box.try_take();

        {
            scope s;
            s.spawn(take_into(box, got));
            box.push(3);  // handed over, its resumption posted
        }                 // destroyed before its turn came: the post is taken back
        co_await support::next_turn{};
        CHECK_FALSE(got.done);
        box.push(4);
        CHECK(box.try_take() == 4);
    });
}

TEST_CASE("push never resumes a taker inside it, only on a later turn of the loop") {
    run_on<mailbox<int>>([](mailbox<int>& box) -> task<void> {
        bool resumed = false;
        scope s;
        s.spawn(take_then_flag(box, resumed));
        box.push(1);
        CHECK_FALSE(resumed);
        co_await support::next_turn{};  // queued behind the taker's resumption
        CHECK(resumed);
        co_await s.join();
    });
}

TEST_CASE("a latch wakes every waiter once set, and a stopped wait returns false") {
    run_on<latch>([](latch& l) -> task<void> {
        std::optional<bool> stopped;
        auto first = co_await when_any(wait_into(l, stopped), finish_now());
        CHECK(first.index() == 1);
        CHECK(stopped == false);

        std::optional<bool> a, b;
        scope s;
        s.spawn(wait_into(l, a));
        s.spawn(wait_into(l, b));
        CHECK_FALSE(l.is_set());
        l.set();
        CHECK_FALSE(a);  // woken through the loop, not inside set()
        co_await s.join();
        CHECK(a == true);
        CHECK(b == true);
        auto after = co_await l.wait();  // already set: no wait
        CHECK(after);
    });
}
