// cluster::metrics gauge: set, added to and taken from, and read into a snapshot as its value.
#include <catch2/catch.hpp>

#include <cluster/metrics/registry.hpp>

#include <thread>
#include <vector>

using namespace cluster::metrics;

TEST_CASE("gauge: set, inc and dec move its value") {
    registry r;
    auto& depth = r.gauge("queue_depth", "Jobs waiting.", {"queue"}).with({"mail"});
    CHECK(depth.value() == 0);
    depth.set(10);
    depth.inc();
    depth.inc(2.5);
    depth.dec(0.5);
    CHECK(depth.value() == 13);
    depth.dec(20);
    CHECK(depth.value() == -7);
}

TEST_CASE("gauge: additions from several threads at once all count") {
    registry r;
    auto& g = r.gauge("in_flight", "Requests in flight.").with({});
    constexpr int threads = 4, each = 50'000;
    std::vector<std::thread> running;
    for (int t = 0; t < threads; ++t)
        running.emplace_back([&] {
            for (int i = 0; i < each; ++i) g.inc();
        });
    for (auto& t : running) t.join();
    CHECK(g.value() == threads * each);
}

TEST_CASE("gauge: a snapshot holds its value and no counts") {
    registry r;
    auto& g = r.gauge("temperature_celsius", "Temperature.").with({});
    g.set(21.5);
    series_snapshot s{{}, {1, 2}, 0};
    g.read_into(s);
    CHECK(s.counts.empty());
    CHECK(s.value == 21.5);
}
