// restart_planner: which exits each restart_mode replaces, the backoff (growth, cap,
// jitter, reset after a stable uptime) and the cap that gives up on a crash loop.
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

}  // namespace

TEST_CASE("permanent replaces every exit, transient only crashes, temporary none") {
    const auto t = clock_type::now();
    restart_policy p = without_jitter();
    SECTION("permanent") {
        restart_planner plan(p);
        CHECK(plan.on_exit(crashed, false, 1s, t).next == action::restart);
        CHECK(plan.on_exit(clean, false, 1s, t).next == action::restart);
        CHECK(plan.on_exit(clean, true, 1s, t).next == action::restart);
    }
    SECTION("transient") {
        p.mode = restart_mode::transient;
        restart_planner plan(p);
        CHECK(plan.on_exit(crashed, false, 1s, t).next == action::restart);
        CHECK(plan.on_exit(failed, false, 1s, t).next == action::restart);
        const auto after_clean = plan.on_exit(clean, false, 1s, t);
        CHECK(after_clean.next == action::none);
        CHECK_THAT(after_clean.what, Catch::Contains("code 0"));
        const auto after_disconnect = plan.on_exit(failed, true, 1s, t);
        CHECK(after_disconnect.next == action::none);
        CHECK_THAT(after_disconnect.what, Catch::Contains("disconnect"));
    }
    SECTION("temporary") {
        p.mode = restart_mode::temporary;
        restart_planner plan(p);
        CHECK(plan.on_exit(crashed, false, 1s, t).next == action::none);
    }
}

TEST_CASE("the default backoff grows 100 ms x 1.5 up to 15 s") {
    restart_policy p = without_jitter();
    p.max_restarts = 1000;
    restart_planner plan(p);
    auto t = clock_type::now();
    std::vector<long> delays;
    for (int i = 0; i < 14; ++i) {
        const auto d = plan.on_exit(crashed, false, 10ms, t);
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
    for (int i = 0; i < 4; ++i, t += 1min) (void)plan.on_exit(crashed, false, 10ms, t);
    CHECK(plan.backoff() == 506ms);
    CHECK(plan.on_exit(crashed, false, p.stable_uptime, t).delay == 100ms);
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
            out.push_back(static_cast<long>(plan.on_exit(crashed, false, p.stable_uptime, t).delay.count()));
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
    restart_policy p = without_jitter();
    restart_planner plan(p);
    auto t = clock_type::now();
    for (unsigned i = 0; i < p.max_restarts; ++i, t += 100ms)
        REQUIRE(plan.on_exit(crashed, false, 10ms, t).next == action::restart);
    const auto storm = plan.on_exit(crashed, false, 10ms, t);
    CHECK(storm.next == action::give_up);
    CHECK_THAT(storm.what, Catch::Contains("more than 10 restarts within 10000 ms"));
    CHECK(plan.gave_up());
    CHECK(plan.on_exit(crashed, false, 10ms, t + 1h).next == action::none);
}

TEST_CASE("restarts spread wider than the period never give up") {
    restart_policy p = without_jitter();
    restart_planner plan(p);
    auto t = clock_type::now();
    // One restart every 1.1 s: never more than 10 within any 10 s.
    for (int i = 0; i < 100; ++i, t += 1100ms) REQUIRE(plan.on_exit(crashed, false, 10ms, t).next == action::restart);
    CHECK_FALSE(plan.gave_up());
}

TEST_CASE("workers that had run for the stable uptime do not count toward the cap") {
    restart_policy p = without_jitter();
    restart_planner plan(p);
    const auto t = clock_type::now();
    // Sixteen long-lived workers killed at once (the OOM killer): each is replaced.
    for (int i = 0; i < 16; ++i) {
        const auto d = plan.on_exit(crashed, false, p.stable_uptime, t);
        REQUIRE(d.next == action::restart);
        CHECK(d.delay == p.initial_delay);
    }
    // Quick deaths still count, and the cap still holds for them.
    for (unsigned i = 0; i < p.max_restarts; ++i)
        REQUIRE(plan.on_exit(crashed, false, 10ms, t).next == action::restart);
    CHECK(plan.on_exit(crashed, false, 10ms, t).next == action::give_up);
}
