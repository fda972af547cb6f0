// primary_options::cpu_affinity with real processes: each slot's worker runs on one CPU of the
// primary's, in fork and exec mode; a replacement runs on its slot's; a primary restricted to
// one CPU puts every worker there; off, the default, leaves a worker the primary's whole mask.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

using namespace cluster;
using support::bounded;
using support::fork_worker;
using support::proto;
using support::scripted;
using support::with_primary;
namespace behaviour = support::behaviour;

namespace {

// The CPUs `pid` may run on; 0: this thread.
std::vector<int> cpus_of(pid_t pid) {
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(::sched_getaffinity(pid, sizeof set, &set) == 0);
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    return cpus;
}

// What cpu_affinity promises the worker of `slot`, given the primary's CPUs.
std::vector<int> expected_for(const std::vector<int>& primary_cpus, unsigned slot) {
    return {primary_cpus[(slot - 1) % primary_cpus.size()]};
}

primary_options pinned(start_mode mode) {
    auto o = scripted(mode, behaviour::answer_work);
    o.cpu_affinity = true;
    o.restart.initial_delay = std::chrono::milliseconds(1);
    o.restart.jitter = 0;
    return o;
}

// This thread (the primary's) on `cpus` alone until the end of the scope, then as it was.
class restricted_to {
public:
    explicit restricted_to(const std::vector<int>& cpus) {
        REQUIRE(::sched_getaffinity(0, sizeof before_, &before_) == 0);
        cpu_set_t set;
        CPU_ZERO(&set);
        for (int cpu : cpus) CPU_SET(cpu, &set);
        REQUIRE(::sched_setaffinity(0, sizeof set, &set) == 0);
    }
    restricted_to(const restricted_to&) = delete;
    restricted_to& operator=(const restricted_to&) = delete;
    ~restricted_to() { ::sched_setaffinity(0, sizeof before_, &before_); }

private:
    cpu_set_t before_;
};

// The worker serving `slot`, once there is one.
task<std::shared_ptr<worker_handle<proto>>> slot_worker(primary<proto>& p, unsigned slot) {
    auto h = co_await bounded(p.worker_in_slot(slot), "the slot's worker");
    REQUIRE(h.has_value());
    co_return *h;
}

// Starts `count` workers, each in a new slot, and checks each one's CPUs.
task<void> check_each_slot(primary<proto>& p, unsigned count, const std::vector<int>& primary_cpus) {
    for (unsigned i = 0; i < count; ++i) (void)co_await fork_worker(p);
    for (unsigned slot = 1; slot <= count; ++slot) {
        const auto h = co_await slot_worker(p, slot);
        INFO("slot " << slot << ", worker " << h->id());
        CHECK(cpus_of(h->pid()) == expected_for(primary_cpus, slot));
    }
}

}  // namespace

TEST_CASE("cpu_affinity pins the worker of slot N to the ((N - 1) mod count)th of the primary's CPUs, in fork and "
          "exec mode, and a killed worker's replacement to its slot's") {
    const auto mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO((mode == start_mode::fork ? "fork mode" : "exec mode"));
    const auto primary_cpus = cpus_of(0);
    // One more worker than CPUs, so the count wraps round, within a bound for large machines.
    const auto count = static_cast<unsigned>(std::min<std::size_t>(primary_cpus.size() + 1, 5));
    with_primary(pinned(mode), [&](primary<proto>& p) -> task<void> {
        co_await check_each_slot(p, count, primary_cpus);
        auto in_slot_2 = co_await slot_worker(p, 2);
        const unsigned killed = in_slot_2->id();
        REQUIRE(in_slot_2->kill(SIGKILL).has_value());
        const auto gone = co_await bounded(p.next<exit_event>());
        CHECK(gone.worker_id == killed);
        const auto replacement = co_await slot_worker(p, 2);
        CHECK(replacement->id() != killed);
        CHECK(cpus_of(replacement->pid()) == expected_for(primary_cpus, 2));
    });
}

TEST_CASE("cpu_affinity honours a primary restricted to one CPU: every worker runs there") {
    const auto mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO((mode == start_mode::fork ? "fork mode" : "exec mode"));
    // The last CPU, not the first: pinning that ignored the primary's mask would pick CPU 0.
    const std::vector<int> only{cpus_of(0).back()};
    const restricted_to primary_on(only);
    with_primary(pinned(mode), [&](primary<proto>& p) -> task<void> { co_await check_each_slot(p, 3, only); });
}

TEST_CASE("cpu_affinity is off by default: a worker may run on every CPU its primary may") {
    const auto mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO((mode == start_mode::fork ? "fork mode" : "exec mode"));
    const auto primary_cpus = cpus_of(0);
    CHECK_FALSE(primary_options{}.cpu_affinity);
    with_primary(scripted(mode, behaviour::answer_work), [&](primary<proto>& p) -> task<void> {
        for (int i = 0; i < 2; ++i) (void)co_await fork_worker(p);
        for (unsigned slot = 1; slot <= 2; ++slot) {
            const auto h = co_await slot_worker(p, slot);
            CHECK(cpus_of(h->pid()) == primary_cpus);
        }
    });
}
