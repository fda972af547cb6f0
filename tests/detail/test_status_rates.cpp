// detail::status_rates: a worker's rates over the window since an earlier snapshot, or over its
// life when it is new; and the history that keeps the earlier snapshot at least min_window old.
#include <catch2/catch.hpp>

#include <cluster/detail/status_rates.hpp>

#include <chrono>

using namespace cluster;
using namespace cluster::detail;
using namespace std::chrono_literals;

namespace {

cluster_status with_worker(unsigned id, double cpu) {
    cluster_status s;
    worker_status w;
    w.id = id;
    w.cpu_seconds = cpu;
    w.uptime = 10s;
    s.workers.push_back(w);
    return s;
}

}  // namespace

TEST_CASE("a worker's rates: over the window if it was in the earlier snapshot, else over its life") {
    const auto before = with_worker(1, 2.0);
    const auto now = with_worker(1, 3.0);
    CHECK(rates_of(now.workers[0], &before, 4.0).cpu_percent == Approx(25.0));
    const auto other = with_worker(2, 3.0);
    CHECK(rates_of(other.workers[0], &before, 4.0).cpu_percent == Approx(30.0));
    CHECK(rates_of(now.workers[0], nullptr, 0).cpu_percent == Approx(30.0));
    worker_status unborn;
    CHECK(rates_of(unborn, nullptr, 0).cpu_percent == 0);
}

TEST_CASE("the history answers the first request with nothing, then the latest snapshot at least min_window older") {
    status_history h;
    const auto t0 = status_history::clock::time_point{} + 1h;
    const auto s0 = with_worker(1, 0.0), s1 = with_worker(1, 1.0), s2 = with_worker(1, 2.0), s3 = with_worker(1, 3.0);
    CHECK(h.against(s0, t0).first == nullptr);
    auto [base, window] = h.against(s1, t0 + 1s);
    REQUIRE(base);
    CHECK(base->workers[0].cpu_seconds == 0.0);
    CHECK(window == Approx(1.0));
    // A moment later: still against s0, not against s1 a few milliseconds ago.
    std::tie(base, window) = h.against(s2, t0 + 1s + 50ms);
    CHECK(base->workers[0].cpu_seconds == 0.0);
    CHECK(window == Approx(1.05));
    std::tie(base, window) = h.against(s3, t0 + 2s);
    CHECK(base->workers[0].cpu_seconds == 1.0);
    CHECK(window == Approx(1.0));
}
