// restart_planner: which exits each restart_mode replaces, the backoff (growth, cap,
// jitter, reset after a stable uptime) and the two caps that give up on a crash loop:
// restarts within a period, and one slot's unstable exits in a row.
#include <catch2/catch.hpp>

#include <cluster/detail/restart_planner.hpp>
#include <cluster/restart_policy.hpp>

#include <chrono>
#include <set>
#include <vector>

using namespace cluster;
using namespace cluster::detail;
using cluster::io::exit_status;
using namespace std::chrono_literals;
using action = restart_decision::action;
using clock_type = restart_planner::clock;

namespace {

const exit_status crashed{0, SIGSEGV, false};
const exit_status failed{1, 0, false};
const exit_status clean{0, 0, false};

restart_policy without_jitter() {
    restart_policy p;
    p.jitter = 0;
    return p;
}

// The period's cap alone: no exit is unstable.
restart_policy period_cap_only() {
    restart_policy p = without_jitter();
    p.min_uptime = 0ms;
    return p;
}

// The worker of `slot`, online from its start, ended with `status` after `uptime`.
worker_exit ended(const exit_status& status, clock_type::duration uptime, unsigned slot = 1) {
    return {slot, status, false, uptime, uptime};
}

// The same, after it left following a disconnect.
worker_exit left(const exit_status& status, clock_type::duration uptime) { return {1, status, true, uptime, uptime}; }

// The worker of `slot` ended before it came online.
worker_exit died_starting(unsigned slot = 1) { return {slot, crashed, false, 5ms, std::nullopt}; }

}  // namespace

TEST_CASE("permanent replaces every exit, transient only crashes, temporary none") {
    const auto t = clock_type::now();
    restart_policy p = without_jitter();
    SECTION("permanent") {
        restart_planner plan(p);
        CHECK(plan.on_exit(ended(crashed, 1s), t).next == action::restart);
        CHECK(plan.on_exit(ended(clean, 1s), t).next == action::restart);
        CHECK(plan.on_exit(left(clean, 1s), t).next == action::restart);
    }
    SECTION("transient") {
        p.mode = restart_mode::transient;
        restart_planner plan(p);
        CHECK(plan.on_exit(ended(crashed, 1s), t).next == action::restart);
        CHECK(plan.on_exit(ended(failed, 1s), t).next == action::restart);
        const auto after_clean = plan.on_exit(ended(clean, 1s), t);
        CHECK(after_clean.next == action::none);
        CHECK_THAT(after_clean.what, Catch::Contains("code 0"));
        const auto after_disconnect = plan.on_exit(left(failed, 1s), t);
        CHECK(after_disconnect.next == action::none);
        CHECK_THAT(after_disconnect.what, Catch::Contains("disconnect"));
    }
    SECTION("temporary") {
        p.mode = restart_mode::temporary;
        restart_planner plan(p);
        CHECK(plan.on_exit(ended(crashed, 1s), t).next == action::none);
    }
}

TEST_CASE("the default backoff grows 100 ms x 1.5 up to 15 s") {
    restart_policy p = period_cap_only();
    p.max_restarts = 1000;
    restart_planner plan(p);
    auto t = clock_type::now();
    std::vector<long> delays;
    for (int i = 0; i < 14; ++i) {
        const auto d = plan.on_exit(ended(crashed, 10ms), t);
        REQUIRE(d.next == action::restart);
        delays.push_back(static_cast<long>(d.delay.count()));
        t += 1min;  // far apart: the cap never counts more than one
    }
    CHECK(delays == std::vector<long>{100, 150, 225, 337, 506, 759, 1139, 1708, 2562, 3844, 5766, 8649, 12974, 15000});
}

TEST_CASE("a worker that stayed up for the stable uptime starts the backoff over") {
    restart_policy p = without_jitter();
    restart_planner plan(p);
    auto t = clock_type::now();
    for (int i = 0; i < 4; ++i, t += 1min) (void)plan.on_exit(ended(crashed, 10ms), t);
    CHECK(plan.backoff() == 506ms);
    CHECK(plan.on_exit(ended(crashed, p.stable_uptime), t).delay == 100ms);
    CHECK(plan.backoff() == 150ms);
}

TEST_CASE("jitter spreads delays within its bounds, and a seed repeats them") {
    restart_policy p;
    p.jitter = 0.2;
    p.max_restarts = 1000;
    auto delays_with = [&](std::uint64_t seed) {
        restart_planner plan(p, seed);
        std::vector<long> out;
        auto t = clock_type::now();
        for (int i = 0; i < 50; ++i, t += 1min) {
            // The stable uptime keeps the step at 0: every delay is 100 ms, jittered.
            out.push_back(static_cast<long>(plan.on_exit(ended(crashed, p.stable_uptime), t).delay.count()));
        }
        return out;
    };
    const auto a = delays_with(7), b = delays_with(7);
    CHECK(a == b);
    for (long d : a) {
        CHECK(d >= 80);
        CHECK(d <= 120);
    }
    CHECK(std::set<long>(a.begin(), a.end()).size() > 5);
}

TEST_CASE("more than max_restarts within the period gives up, once, saying why") {
    restart_policy p = period_cap_only();
    restart_planner plan(p);
    auto t = clock_type::now();
    for (unsigned i = 0; i < p.max_restarts; ++i, t += 100ms)
        REQUIRE(plan.on_exit(ended(crashed, 10ms), t).next == action::restart);
    const auto storm = plan.on_exit(ended(crashed, 10ms), t);
    CHECK(storm.next == action::give_up);
    CHECK_THAT(storm.what, Catch::Contains("more than 10 restarts within 10000 ms"));
    CHECK(plan.gave_up());
    CHECK(plan.on_exit(ended(crashed, 10ms), t + 1h).next == action::none);
}

TEST_CASE("restarts spread wider than the period never give up") {
    restart_policy p = period_cap_only();
    restart_planner plan(p);
    auto t = clock_type::now();
    // One restart every 1.1 s: never more than 10 within any 10 s.
    for (int i = 0; i < 100; ++i, t += 1100ms) REQUIRE(plan.on_exit(ended(crashed, 10ms), t).next == action::restart);
    CHECK_FALSE(plan.gave_up());
}

TEST_CASE("workers that had run for the stable uptime do not count toward the cap") {
    restart_policy p = period_cap_only();
    restart_planner plan(p);
    const auto t = clock_type::now();
    // Sixteen long-lived workers killed at once (the OOM killer): each is replaced.
    for (int i = 0; i < 16; ++i) {
        const auto d = plan.on_exit(ended(crashed, p.stable_uptime), t);
        REQUIRE(d.next == action::restart);
        CHECK(d.delay == p.initial_delay);
    }
    // Quick deaths still count, and the cap still holds for them.
    for (unsigned i = 0; i < p.max_restarts; ++i)
        REQUIRE(plan.on_exit(ended(crashed, 10ms), t).next == action::restart);
    CHECK(plan.on_exit(ended(crashed, 10ms), t).next == action::give_up);
}

// ---- one slot's unstable exits in a row ----

TEST_CASE("more than max_unstable_restarts exits in a row before online or within min_uptime give up, saying why") {
    const restart_policy p = without_jitter();
    restart_planner plan(p);
    auto t = clock_type::now();
    // Before coming online, or just under min_uptime after: each is unstable. Spaced by
    // their delays, as the real restarts are: the period's cap sees at most a few.
    for (unsigned i = 0; i < p.max_unstable_restarts; ++i) {
        const auto exit = i % 2 == 0 ? died_starting() : ended(crashed, p.min_uptime - 1ms);
        const auto d = plan.on_exit(exit, t);
        REQUIRE(d.next == action::restart);
        t += d.delay;
    }
    const auto loop = plan.on_exit(died_starting(), t);
    CHECK(loop.next == action::give_up);
    CHECK(loop.what ==
          "more than 10 unstable restarts of slot 1: each worker exited within 1000 ms of coming online, or before");
    CHECK(plan.gave_up());
}

// Regression: with the jitter low, a slot's 11 unstable exits fit in 10 s and the period's
// cap tripped too; it answered first, and the reason no longer named the slot.
TEST_CASE("a slot failing alone at every start is named, even when its restarts also fill the period") {
    const restart_policy p = without_jitter();
    restart_planner plan(p);
    auto t = clock_type::now();
    for (unsigned i = 0; i < p.max_unstable_restarts; ++i, t += 500ms)
        REQUIRE(plan.on_exit(died_starting(), t).next == action::restart);
    const auto loop = plan.on_exit(died_starting(), t);
    CHECK(loop.next == action::give_up);
    CHECK_THAT(loop.what, Catch::StartsWith("more than 10 unstable restarts of slot 1:"));
}

TEST_CASE("with the defaults, a worker that fails at every start is given up within 30 s, jitter included") {
    const restart_policy p;
    // The longest the delays can add up to: each one at its jitter's top.
    restart_planner longest(without_jitter());
    std::chrono::milliseconds most{0};
    for (unsigned i = 0; i < p.max_unstable_restarts; ++i) {
        most += std::min(std::chrono::duration_cast<std::chrono::milliseconds>(longest.backoff() * (1 + p.jitter)),
                         p.max_delay);
        REQUIRE(longest.on_exit(died_starting(), clock_type::now() + i * 1min).next == action::restart);
    }
    CHECK(most < 13600ms);
    // And as the policy runs, each worker taking 100 ms to fail.
    const auto seed = GENERATE(range(0, 20));
    restart_planner plan(p, static_cast<std::uint64_t>(seed));
    const auto start = clock_type::now();
    auto t = start;
    unsigned restarts = 0;
    for (;;) {
        t += 100ms;
        const auto d = plan.on_exit(died_starting(), t);
        if (d.next != action::restart) break;
        ++restarts;
        t += d.delay;
    }
    CHECK(plan.gave_up());
    CHECK(restarts == p.max_unstable_restarts);
    CHECK(t - start <= most + 11 * 100ms);
    CHECK(t - start < 30s);
}

TEST_CASE("a worker that stays up for min_uptime after coming online starts its slot's count over") {
    const restart_policy p = without_jitter();
    restart_planner plan(p);
    auto t = clock_type::now();
    auto exit_after = [&](const worker_exit& e) {
        const auto d = plan.on_exit(e, t);
        t += d.delay + 1s;  // the period's cap never sees more than a few
        return d.next;
    };
    for (unsigned i = 0; i < p.max_unstable_restarts; ++i) REQUIRE(exit_after(died_starting()) == action::restart);
    // Up for min_uptime since it came online, after a long start: not unstable.
    REQUIRE(exit_after(worker_exit{1, crashed, false, p.min_uptime + 20s, p.min_uptime}) == action::restart);
    for (unsigned i = 0; i < p.max_unstable_restarts; ++i) REQUIRE(exit_after(died_starting()) == action::restart);
    CHECK(exit_after(died_starting()) == action::give_up);
}

TEST_CASE("unstable exits are counted per slot, and forgotten with the slot") {
    const restart_policy p = without_jitter();
    restart_planner plan(p);
    auto t = clock_type::now();
    // Two slots failing in turn, one exit every 1.1 s: never more than 10 within any 10 s.
    auto exit_after = [&](unsigned slot) {
        t += 1100ms;
        return plan.on_exit(died_starting(slot), t);
    };
    for (unsigned i = 0; i < p.max_unstable_restarts; ++i) {
        REQUIRE(exit_after(1).next == action::restart);
        REQUIRE(exit_after(2).next == action::restart);
    }
    plan.forget(2);
    CHECK(exit_after(2).next == action::restart);
    const auto loop = exit_after(1);
    CHECK(loop.next == action::give_up);
    CHECK_THAT(loop.what, Catch::Contains("unstable restarts of slot 1:"));
}

TEST_CASE("min_uptime 0 turns the unstable cap off") {
    restart_policy p = without_jitter();
    p.min_uptime = 0ms;
    restart_planner plan(p);
    auto t = clock_type::now();
    for (int i = 0; i < 100; ++i, t += 1100ms) REQUIRE(plan.on_exit(died_starting(), t).next == action::restart);
    CHECK_FALSE(plan.gave_up());
}

TEST_CASE("an exit for want of descriptors or memory neither counts as unstable nor starts the count over") {
    const restart_policy p = without_jitter();
    restart_planner plan(p);
    const exit_status exhausted{exit_code::out_of_resources, 0, false};
    auto t = clock_type::now();
    for (unsigned i = 0; i < p.max_unstable_restarts; ++i, t += 1min)
        REQUIRE(plan.on_exit(died_starting(), t).next == action::restart);
    for (int i = 0; i < 5; ++i, t += 1min)
        REQUIRE(plan.on_exit(worker_exit{1, exhausted, false, 5ms, std::nullopt}, t).next == action::restart);
    CHECK(plan.on_exit(died_starting(), t).next == action::give_up);
}
