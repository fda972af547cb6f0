// Tests cluster/io/detail/spinning_wakes.hpp: wakes left while it is open are handed over, in
// order, when it closes; a closed one refuses them; with another thread leaving wakes as it
// opens and closes, each is taken once or refused, never lost.
#include <catch2/catch.hpp>

#include <cluster/io/detail/spinning_wakes.hpp>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

using cluster::io::detail::spinning_wakes;

namespace {

std::vector<std::uintptr_t> closed(spinning_wakes& w) {
    std::vector<std::uintptr_t> taken;
    w.close([&](std::uintptr_t x) { taken.push_back(x); });
    return taken;
}

}  // namespace

TEST_CASE("spinning_wakes: open, it takes wakes and hands them over in order as it closes, and is empty after") {
    spinning_wakes w;
    CHECK_FALSE(w.leave(1));  // closed as it starts
    w.open();
    CHECK_FALSE(w.any());
    CHECK(w.leave(7));
    CHECK(w.any());
    CHECK(w.leave(9));
    CHECK(closed(w) == std::vector<std::uintptr_t>{7, 9});
    CHECK_FALSE(w.any());
    CHECK_FALSE(w.leave(11));
    w.open();
    CHECK_FALSE(w.close([](std::uintptr_t) {}));  // nothing was left: says so
    w.open();
    CHECK(w.leave(13));
    CHECK(w.close([](std::uintptr_t) {}));
}

TEST_CASE(
    "spinning_wakes: another thread's wakes, left while it opens and closes 20,000 times, are taken once or refused") {
    constexpr std::uintptr_t wakes = 200'000;
    spinning_wakes w;
    std::atomic<bool> done{false};
    std::vector<std::uintptr_t> taken;
    std::thread loop([&] {
        for (int cycle = 0; cycle < 20'000 || !done.load(); ++cycle) {
            w.open();
            while (!w.any() && !done.load()) std::this_thread::yield();
            w.close([&](std::uintptr_t x) { taken.push_back(x); });
        }
        w.close([&](std::uintptr_t x) { taken.push_back(x); });
    });
    std::vector<std::uintptr_t> accepted;
    for (std::uintptr_t i = 1; i <= wakes; ++i)
        if (w.leave(i)) accepted.push_back(i);
    done.store(true);
    loop.join();
    CHECK(taken == accepted);  // in order, none twice, none lost
    CHECK_FALSE(accepted.empty());
}
