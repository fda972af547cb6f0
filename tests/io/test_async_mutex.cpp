// io::async_mutex: one holder at a time, first come first served, a guard that unlocks,
// and waiters that stop or are destroyed while waiting, or just after the lock came to them.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/io/async_mutex.hpp>

#include "support/loop.hpp"
#include "support/waiting.hpp"

#include <coroutine>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

using namespace cluster;
using cluster::io::async_mutex;

namespace {

// Takes the lock, notes "<name> in", lets the loop turn `turns` times, notes "<name> out".
task<void> hold_for(async_mutex& m, std::vector<std::string>& log, std::string name, int turns) {
    auto held = co_await m.lock();
    if (!held) {
        log.push_back(name + " stopped");
        co_return;
    }
    log.push_back(name + " in");
    for (int i = 0; i < turns; ++i) co_await support::next_turn{};
    log.push_back(name + " out");
}

}  // namespace

TEST_CASE("async_mutex lets one task in at a time, in the order they asked") {
    support::run_on_loop([]() -> task<void> {
        async_mutex m;
        std::vector<std::string> log;
        scope s;
        s.spawn(hold_for(m, log, "a", 3));
        s.spawn(hold_for(m, log, "b", 1));
        s.spawn(hold_for(m, log, "c", 0));
        CHECK(m.locked());
        co_await s.join();
        CHECK(log == std::vector<std::string>{"a in", "a out", "b in", "b out", "c in", "c out"});
        CHECK_FALSE(m.locked());
    });
}

TEST_CASE("async_mutex's guard unlocks when it goes, and a lock with nobody waiting is taken at once") {
    support::run_on_loop([]() -> task<void> {
        async_mutex m;
        {
            auto first = co_await m.lock();
            REQUIRE(first);
            CHECK(m.locked());
            auto moved = std::move(*first);
            first.reset();  // a moved-from guard unlocks nothing
            CHECK(m.locked());
        }
        CHECK_FALSE(m.locked());
        auto again = co_await m.lock();
        CHECK(again);
    });
}

TEST_CASE("a waiter asked to stop gets no lock, and the ones behind it still do") {
    support::run_on_loop([]() -> task<void> {
        async_mutex m;
        std::vector<std::string> log;
        std::stop_source stop_b;
        scope s;
        s.spawn(hold_for(m, log, "a", 2));
        s.spawn(support::under(stop_b.get_token(), hold_for(m, log, "b", 0)));
        s.spawn(hold_for(m, log, "c", 0));
        stop_b.request_stop();
        co_await s.join();
        CHECK(log == std::vector<std::string>{"a in", "b stopped", "a out", "c in", "c out"});
        CHECK_FALSE(m.locked());
    });
}

TEST_CASE("a waiter stopped after the lock came to it, before it ran, passes the lock on") {
    support::run_on_loop([]() -> task<void> {
        async_mutex m;
        std::vector<std::string> log;
        std::stop_source stop_b;
        scope s;
        {
            auto held = co_await m.lock();
            REQUIRE(held);
            s.spawn(support::under(stop_b.get_token(), hold_for(m, log, "b", 0)));
            s.spawn(hold_for(m, log, "c", 0));
        }  // unlocked: b is handed the lock and posted to run
        stop_b.request_stop();
        co_await s.join();
        CHECK(log == std::vector<std::string>{"b stopped", "c in", "c out"});
        CHECK_FALSE(m.locked());
    });
}

TEST_CASE("a waiter destroyed while waiting, or just after the lock came to it, leaves the lock usable") {
    support::run_on_loop([]() -> task<void> {
        async_mutex m;
        std::vector<std::string> log;
        auto held = co_await m.lock();
        REQUIRE(held);
        {
            scope doomed;
            doomed.spawn(hold_for(m, log, "waiting", 0));
        }  // destroyed while queued
        {
            scope doomed;
            doomed.spawn(hold_for(m, log, "handed", 0));
            held.reset();  // the lock goes to "handed", which never runs
        }
        CHECK_FALSE(m.locked());
        scope s;
        s.spawn(hold_for(m, log, "last", 0));
        co_await s.join();
        CHECK(log == std::vector<std::string>{"last in", "last out"});
    });
}
