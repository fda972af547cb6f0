// Slots with real processes: a worker, its handle and its events know the slot it fills; a
// killed worker's replacement takes the same slot with the same fork_options; worker_in_slot()
// waits for a slot's worker through restarts and reloads and ends when the slot or the cluster
// goes; slots() and slots_changed() follow scaling.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/events.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::bounded;
using support::fork_worker;
using support::identity;
using support::joined;
using support::proto;
using support::scripted;
using support::with_primary;
namespace behaviour = support::behaviour;

namespace {

using handle_ptr = std::shared_ptr<worker_handle<proto>>;

// Workers that say who they are, then answer work; restarts as quick or as slow as `delay`.
primary_options identifying(start_mode mode, std::chrono::milliseconds delay) {
    auto o = scripted(mode, behaviour::identify);
    o.restart.initial_delay = delay;
    o.restart.max_delay = delay;
    o.restart.jitter = 0;
    return o;
}

fork_options tagged(std::string tag) {
    fork_options f;
    f.env[support::setting::tag] = std::move(tag);
    return f;
}

task<identity> next_identity(primary<proto>& p) {
    auto m = co_await bounded(p.next_message<identity>(), "a worker's identity");
    co_return m.value;
}

// The worker serving `slot`, which there must be.
task<handle_ptr> serving(primary<proto>& p, unsigned slot) {
    auto h = co_await bounded(p.worker_in_slot(slot), "the worker in the slot");
    INFO("slot " << slot);
    if (!h) FAIL("worker_in_slot: " << h.error().message());
    co_return *h;
}

// What worker_in_slot(slot) ended with: nothing if it gave a worker.
task<void> wait_for_worker(primary<proto>& p, unsigned slot, std::error_code& got) {
    auto h = co_await p.worker_in_slot(slot);
    got = h ? std::error_code{} : h.error();
}

task<void> wait_for_slots(primary<proto>& p, std::vector<unsigned> known, result<std::vector<unsigned>>& got) {
    got = co_await p.slots_changed(std::move(known));
}

}  // namespace

TEST_CASE("a worker knows its slot, as its handle and events do, a killed worker's replacement has a new id, the "
          "same slot and the same fork_options") {
    const auto mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO((mode == start_mode::fork ? "fork mode" : "exec mode"));
    with_primary(identifying(mode, 1ms), [](primary<proto>& p) -> task<void> {
        const auto first_options = tagged("first"), second_options = tagged("second");
        auto& first = co_await fork_worker(p, first_options);
        auto& second = co_await fork_worker(p, second_options);
        CHECK(first.slot() == 1);
        CHECK(second.slot() == 2);
        CHECK(p.slots() == std::vector<unsigned>{1, 2});
        for (int i = 0; i < 2; ++i) {
            const auto me = co_await next_identity(p);
            INFO("worker " << me.worker_id);
            CHECK(me.slot == me.worker_id);
            CHECK(me.tag == (me.slot == 1 ? "first" : "second"));
        }

        const unsigned killed = first.id();
        REQUIRE(first.kill(SIGKILL).has_value());
        const auto seen = co_await support::events_through(p, killed, event_kind::exit);
        for (const auto& f : support::all_of<fork_event>(seen)) CHECK(f.slot == f.worker_id);
        for (const auto& o : support::all_of<online_event>(seen)) CHECK(o.slot == o.worker_id);
        CHECK(support::exit_of(seen).slot == 1);

        const auto replacement = co_await next_identity(p);
        CHECK(replacement.worker_id == 3);
        CHECK(replacement.slot == 1);
        CHECK(replacement.tag == "first");
        const auto forked = co_await bounded(p.next<fork_event>());
        CHECK(forked.worker_id == 3);
        CHECK(forked.slot == 1);
        const auto now = co_await serving(p, 1);
        CHECK(now->id() == 3);
        CHECK(now->slot() == 1);
        CHECK(p.slots() == std::vector<unsigned>{1, 2});
    });
}

TEST_CASE("worker_in_slot() gives a slot's ready worker at once, waits through a restart for the replacement, and "
          "gives a reload's replacement once it took over") {
    with_primary(identifying(start_mode::fork, 200ms), [](primary<proto>& p) -> task<void> {
        auto& first = co_await fork_worker(p);
        const unsigned slot = first.slot();
        const auto at_once = co_await serving(p, slot);
        CHECK(at_once->id() == first.id());
        CHECK(at_once->is_ready());

        REQUIRE(first.kill(SIGKILL).has_value());
        const auto gone = co_await bounded(p.next<exit_event>());
        CHECK(gone.slot == slot);
        CHECK(at_once->is_dead());
        // Nothing serves the slot for the restart's 200 ms: this waits for the replacement.
        const auto replacement = co_await serving(p, slot);
        CHECK(replacement->id() != gone.worker_id);
        CHECK(replacement->slot() == slot);
        CHECK(replacement->is_online());
        const auto planned = co_await bounded(p.next<restart_scheduled_event>());
        CHECK(planned.worker_id == gone.worker_id);
        CHECK(planned.slot == slot);

        const auto reloaded = co_await bounded(p.reload());
        CHECK(reloaded.ok);
        const auto after_reload = co_await serving(p, slot);
        CHECK(after_reload->id() > replacement->id());
        CHECK(after_reload->slot() == slot);
        CHECK(replacement->is_dead());
    });
}

TEST_CASE("worker_in_slot() does not hang: slot_gone once scaling down gives the slot up, cluster_stopping once "
          "the primary stops") {
    with_primary(identifying(start_mode::fork, 60s), [](primary<proto>& p) -> task<void> {
        co_await bounded(p.scale(2));
        auto unknown = co_await bounded(p.worker_in_slot(99));
        CHECK(unknown.error() == errc::slot_gone);

        // Slot 1 waits a minute for its restart; scaling down gives it up first.
        const auto in_slot_1 = co_await serving(p, 1);
        REQUIRE(in_slot_1->kill(SIGKILL).has_value());
        (void)co_await bounded(p.next<restart_scheduled_event>());
        std::error_code first_wait;
        scope waiting;
        waiting.spawn(wait_for_worker(p, 1, first_wait));
        co_await bounded(p.scale(1));
        co_await bounded(joined(waiting));
        CHECK(first_wait == errc::slot_gone);
        CHECK(p.slots() == std::vector<unsigned>{2});

        const auto in_slot_2 = co_await serving(p, 2);
        REQUIRE(in_slot_2->kill(SIGKILL).has_value());
        (void)co_await bounded(p.next<restart_scheduled_event>());
        std::error_code second_wait;
        waiting.spawn(wait_for_worker(p, 2, second_wait));
        co_await bounded(p.shutdown());
        co_await bounded(joined(waiting));
        CHECK(second_wait == errc::cluster_stopping);
        auto after_stop = co_await bounded(p.worker_in_slot(2));
        CHECK(after_stop.error() == errc::cluster_stopping);
    });
}

TEST_CASE("slots() follows scaling, numbers are never reused, and slots_changed() wakes when a slot is added or "
          "given up, and at a stop") {
    with_primary(identifying(start_mode::fork, 1ms), [](primary<proto>& p) -> task<void> {
        co_await bounded(p.scale(1));
        const auto known = p.slots();
        CHECK(known == std::vector<unsigned>{1});

        result<std::vector<unsigned>> changed;
        scope watching;
        watching.spawn(wait_for_slots(p, known, changed));
        co_await bounded(p.scale(3));
        co_await bounded(joined(watching));
        REQUIRE(changed.has_value());
        CHECK(*changed == std::vector<unsigned>{1, 2, 3});

        // A change made before the call is not missed: it returns at once.
        co_await bounded(p.scale(2));
        const auto shrunk = co_await bounded(p.slots_changed(*changed));
        REQUIRE(shrunk.has_value());
        CHECK(*shrunk == std::vector<unsigned>{2, 3});
        co_await bounded(p.scale(3));
        CHECK(p.slots() == std::vector<unsigned>{2, 3, 4});

        watching.spawn(wait_for_slots(p, p.slots(), changed));
        co_await bounded(p.shutdown());
        co_await bounded(joined(watching));
        CHECK(changed.error() == errc::cluster_stopping);
        CHECK(p.slots().empty());
    });
}
