// detail::slot_table on its own: slots and the workers filling them, the slot given up when
// scaling down, pending restarts called off, and the restart policy's decisions.
#include <catch2/catch.hpp>

#include <cluster/detail/slot_table.hpp>

#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using cluster::fork_options;
using cluster::restart_policy;
using cluster::detail::restart_decision;
using cluster::detail::slot_table;
using cluster::detail::worker_exit;

namespace {

fork_options tagged(const char* tag) {
    fork_options o;
    o.env["TAG"] = tag;
    return o;
}

}  // namespace

TEST_CASE("slots keep their fork options and say which worker fills them") {
    slot_table slots{restart_policy{}};
    CHECK(slots.empty());
    const unsigned a = slots.add(tagged("a"));
    const unsigned b = slots.add(tagged("b"));
    CHECK(a != b);
    CHECK(slots.size() == 2);
    REQUIRE(slots.options(b));
    CHECK(slots.options(b)->env.at("TAG") == "b");
    CHECK(slots.worker(a) == 0);

    slots.bind(a, 7);
    slots.bind(b, 9);
    CHECK(slots.worker(a) == 7);
    CHECK(slots.slot_of(9) == b);
    CHECK(slots.slot_of(8) == 0);
    CHECK(slots.workers() == std::vector<unsigned>{7, 9});

    slots.bind(a, 12);  // a replacement takes the slot: the old worker fills none
    CHECK(slots.slot_of(7) == 0);
    CHECK(slots.slot_of(12) == a);

    slots.vacate(b);
    CHECK(slots.worker(b) == 0);
    CHECK(slots.contains(b));
    slots.forget(b);
    CHECK_FALSE(slots.contains(b));
    CHECK(slots.options(b) == nullptr);
    CHECK(slots.ids() == std::vector<unsigned>{a});
    slots.bind(b, 3);  // a forgotten slot takes no worker
    CHECK(slots.slot_of(3) == 0);
}

TEST_CASE("scaling down gives up an empty slot first, then the oldest worker's") {
    slot_table slots{restart_policy{}};
    CHECK(slots.extra() == 0);
    const unsigned a = slots.add({}), b = slots.add({}), c = slots.add({});
    slots.bind(a, 5);
    slots.bind(b, 2);
    slots.bind(c, 8);
    CHECK(slots.extra() == b);
    slots.vacate(c);
    CHECK(slots.extra() == c);
}

TEST_CASE("a pending restart is called off when its slot is filled or forgotten") {
    slot_table slots{restart_policy{}};
    const unsigned a = slots.add({}), b = slots.add({});
    auto refilled = slots.pending_restart(a);
    auto forgotten = slots.pending_restart(b);
    CHECK_FALSE(refilled.stop_requested());
    slots.bind(a, 4);
    CHECK(refilled.stop_requested());
    CHECK_FALSE(slots.pending_restart(a).stop_requested());  // the next one is pending afresh
    slots.forget(b);
    CHECK(forgotten.stop_requested());
    CHECK_FALSE(slots.pending_restart(b).stop_possible());
}

TEST_CASE("decisions come from the restart policy, which setup() may replace") {
    restart_policy policy;
    policy.max_restarts = 1;
    policy.jitter = 0;
    slot_table slots{policy};
    const auto now = slot_table::clock::now();
    const worker_exit crashed{.slot = 1, .status = {.code = 1}, .uptime = 1s, .online_for = 1s};
    auto first = slots.decide(crashed, now);
    CHECK(first.next == restart_decision::action::restart);
    CHECK(first.delay == policy.initial_delay);
    CHECK(slots.attempt() == 1);
    CHECK(slots.decide(crashed, now).next == restart_decision::action::give_up);

    policy.mode = cluster::restart_mode::temporary;
    slots.set_policy(policy);
    CHECK(slots.attempt() == 0);
    auto none = slots.decide(crashed, now);
    CHECK(none.next == restart_decision::action::none);
    CHECK_FALSE(none.what.empty());
}
