// cluster::metrics counter: counts up through a cached handle, exactly, from several threads
// at once, and reads into a snapshot as one count.
#include <catch2/catch.hpp>

#include <cluster/metrics/registry.hpp>

#include <thread>
#include <vector>

using namespace cluster::metrics;

TEST_CASE("counter: inc adds one, or n, and the handle is the family's series for its labels") {
    registry r;
    auto& requests = r.counter("requests_total", "Requests served.", {"method", "code"});
    auto& ok = requests.with({"GET", "200"});
    ok.inc();
    ok.inc(4);
    CHECK(ok.value() == 5);
    CHECK(&requests.with({"GET", "200"}) == &ok);
    CHECK(requests.with({"GET", "500"}).value() == 0);
}

TEST_CASE("counter: increments from several threads at once all count") {
    registry r;
    auto& c = r.counter("work_total", "Work done.").with({});
    constexpr int threads = 4, each = 100'000;
    std::vector<std::thread> running;
    for (int t = 0; t < threads; ++t)
        running.emplace_back([&] {
            for (int i = 0; i < each; ++i) c.inc();
        });
    for (auto& t : running) t.join();
    CHECK(c.value() == std::uint64_t{threads} * each);
}

TEST_CASE("counter: a snapshot holds its count and no value") {
    registry r;
    auto& c = r.counter("work_total", "Work done.").with({});
    c.inc(7);
    series_snapshot s;
    c.read_into(s);
    CHECK(s.counts == std::vector<std::uint64_t>{7});
    CHECK(s.value == 0);
}
