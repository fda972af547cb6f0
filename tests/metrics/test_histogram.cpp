// cluster::metrics histogram: each observation in the first bucket whose bound it does not
// pass (bounds inclusive, +Inf last), the sum and count beside, and NaN dropped.
#include <catch2/catch.hpp>

#include <cluster/metrics/registry.hpp>

#include <limits>
#include <thread>
#include <vector>

using namespace cluster::metrics;

TEST_CASE("histogram: observations land in the bucket whose bound is the first not below them") {
    registry r;
    auto& h = r.histogram("latency_seconds", "Latency.", {"route"}, {0.1, 1, 10}).with({"/"});
    for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 11.0, -3.0, std::numeric_limits<double>::infinity()}) h.observe(v);
    series_snapshot s;
    h.read_into(s);
    CHECK(s.counts == std::vector<std::uint64_t>{3, 2, 2, 2});  // <=0.1, <=1, <=10, +Inf
    CHECK(h.count() == 9);
    CHECK(h.sum() == std::numeric_limits<double>::infinity());
}

TEST_CASE("histogram: the sum and count add up, and a NaN is dropped") {
    registry r;
    auto& h = r.histogram("size_bytes", "Sizes.", {}, {100, 1000}).with({});
    h.observe(50);
    h.observe(500);
    h.observe(std::numeric_limits<double>::quiet_NaN());
    h.observe(5000);
    CHECK(h.count() == 3);
    CHECK(h.sum() == 5550);
    series_snapshot s;
    h.read_into(s);
    CHECK(s.counts == std::vector<std::uint64_t>{1, 1, 1});
    CHECK(s.value == 5550);
}

TEST_CASE("histogram: with no bounds, every observation is +Inf's") {
    registry r;
    auto& h = r.histogram("anything_seconds", "Anything.", {}, {}).with({});
    h.observe(1);
    h.observe(-1);
    series_snapshot s;
    h.read_into(s);
    CHECK(s.counts == std::vector<std::uint64_t>{2});
}

TEST_CASE("histogram: observations from several threads at once all count") {
    registry r;
    auto& h = r.histogram("work_seconds", "Work.", {}, {1}).with({});
    constexpr int threads = 4, each = 50'000;
    std::vector<std::thread> running;
    for (int t = 0; t < threads; ++t)
        running.emplace_back([&, t] {
            for (int i = 0; i < each; ++i) h.observe(t % 2 ? 2.0 : 0.5);
        });
    for (auto& t : running) t.join();
    series_snapshot s;
    h.read_into(s);
    CHECK(s.counts == std::vector<std::uint64_t>{2 * each, 2 * each});
    CHECK(s.value == 2 * each * 0.5 + 2 * each * 2.0);
}
