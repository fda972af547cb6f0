// The primitives tasks wait on: latch, mailbox<T> (order, matching, close, stops, waiters
// destroyed while waiting, resumption through the loop) and ipc::request_table.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/ipc/request_table.hpp>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;

namespace {

using table = ipc::request_table<std::string>;

// request_table keeps its next tag to itself, and wrapping it honestly takes 2^32
// requests: an explicit instantiation may name a private member ([temp.spec.general]/6).
template <std::uint32_t table::*Member>
struct next_tag_access {
    friend std::uint32_t& next_tag(table& t) { return t.*Member; }
};
template struct next_tag_access<&table::next_>;
std::uint32_t& next_tag(table& t);

// Runs body on a fresh loop with a fresh T to work on.
template <class T, class Body>
void run_on(Body body) {
    io_context ctx;
    T subject;
    sync_wait(body(subject));
}

// Suspends until the next turn of the loop, behind everything posted before it.
struct next_turn {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { io_context::current_or_throw().post(h); }
    void await_resume() const noexcept {}
};

bool is_even(const int& v) noexcept { return v % 2 == 0; }

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

task<void> response_into(table::slot& s, std::optional<result<std::string>>& got) { got = co_await s.response(); }

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
        co_await next_turn{};
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
        co_await next_turn{};  // queued behind the taker's resumption
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

TEST_CASE("a request table completes requests by tag and refuses unknown or late tags") {
    run_on<table>([](table& t) -> task<void> {
        table::slot a(t), b(t);
        CHECK(a.tag() != 0);
        CHECK(b.tag() != 0);
        CHECK(a.tag() != b.tag());
        CHECK(t.size() == 2);
        const auto a_tag = a.tag();

        std::optional<result<std::string>> got_a, got_b;
        scope s;
        s.spawn(response_into(a, got_a));
        s.spawn(response_into(b, got_b));
        CHECK(t.complete(b.tag(), "for b"));
        CHECK(t.complete(a.tag(), "for a"));
        CHECK_FALSE(t.complete(a_tag, "answered already"));
        CHECK_FALSE(t.complete(0xdead, "never asked"));
        co_await s.join();
        REQUIRE(got_a);
        REQUIRE(got_b);
        CHECK(got_a->value() == "for a");
        CHECK(got_b->value() == "for b");
        CHECK(t.size() == 0);

        std::uint32_t gave_up = 0;
        {
            table::slot c(t);
            gave_up = c.tag();
            auto timed = co_await with_timeout(c.response(), 1ms);
            CHECK(timed.error() == std::errc::timed_out);
        }
        CHECK(t.size() == 0);
        CHECK_FALSE(t.complete(gave_up, "too late"));

        // A response that came before anyone waited is there when they do.
        table::slot d(t);
        CHECK(t.complete(d.tag(), "early"));
        auto early = co_await d.response();
        CHECK(early.value() == "early");
    });
}

TEST_CASE("fail_all fails the requests waiting and every one made after") {
    run_on<table>([](table& t) -> task<void> {
        table::slot waiting(t);
        const auto tag = waiting.tag();
        std::optional<result<std::string>> got;
        scope s;
        s.spawn(response_into(waiting, got));
        t.fail_all(make_error_code(errc::peer_gone));
        CHECK(t.size() == 0);
        CHECK_FALSE(t.complete(tag, "after the end"));
        co_await s.join();
        REQUIRE(got);
        CHECK(got->error() == errc::peer_gone);

        table::slot later(t);
        CHECK(later.tag() == 0);
        CHECK(t.size() == 0);
        auto r = co_await later.response();
        CHECK(r.error() == errc::peer_gone);
    });
}

TEST_CASE("request tags wrap around past 0 and past tags still in use") {
    io_context ctx;
    table t;
    table::slot one(t), two(t);
    REQUIRE(one.tag() == 1);
    REQUIRE(two.tag() == 2);
    next_tag(t) = 0xfffffffe;
    table::slot last(t);
    CHECK(last.tag() == 0xffffffff);
    table::slot wrapped(t);
    CHECK(wrapped.tag() == 3);  // 0 means "no tag"; 1 and 2 are still waiting
    CHECK(t.size() == 4);
}
