// The cluster's own readiness (primary<P>::ready(), is_ready(), until_ready()): the first
// time every slot has a ready worker, or when the primary's code says so with
// ready_manually; once ready, it stays ready through a crash.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <signal.h>

#include <chrono>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::bounded;
using support::fork_worker;
using support::proto;
using support::scripted;
using support::send_go;
using support::with_primary;
namespace behaviour = support::behaviour;

namespace {

// Until n workers said they wait for their go, in whatever order.
task<void> until_waiting(primary<proto>& p, int n) {
    for (int i = 0; i < n; ++i)
        (void)co_await bounded(p.next_message<support::waiting>(), "a worker waiting for its go");
}

task<void> until_online(primary<proto>& p) { (void)co_await bounded(p.next<online_event>()); }

}  // namespace

TEST_CASE("the cluster is ready once every slot has a ready worker, not while one waits, and stays ready") {
    auto o = scripted(start_mode::fork, behaviour::ready_on_go);
    o.wait_ready = true;
    with_primary(o, [](primary<proto>& p) -> task<void> {
        CHECK_FALSE(p.is_ready());
        (void)co_await fork_worker(p);
        (void)co_await fork_worker(p);
        co_await until_waiting(p, 2);
        co_await send_go(p, 1);
        (void)co_await bounded(p.next_message<support::readying>());
        // Worker 2 is online but not ready: its slot does not serve yet.
        CHECK_FALSE(p.is_ready());
        co_await send_go(p, 2);
        const bool ready = co_await bounded(p.until_ready(), "the cluster ready");
        CHECK(ready);
        CHECK(p.is_ready());
        // A crash empties a slot for a while: the cluster was ready, and stays so.
        REQUIRE(p.worker(1)->kill(SIGKILL));
        (void)co_await bounded(p.next<exit_event>());
        CHECK(p.is_ready());
    });
}

TEST_CASE("with ready_manually, the cluster is ready at p.ready(), however many workers are ready") {
    auto o = scripted(start_mode::fork, behaviour::identify);
    o.ready_manually = true;
    with_primary(o, [](primary<proto>& p) -> task<void> {
        (void)co_await fork_worker(p);
        co_await until_online(p);
        // Online is ready for a worker without wait_ready: the slot serves, the cluster waits.
        (void)co_await bounded(p.worker_in_slot(p.slots().front()));
        CHECK_FALSE(p.is_ready());
        p.ready();
        CHECK(p.is_ready());
        const bool ready = co_await bounded(p.until_ready());
        CHECK(ready);
    });
}
