// primary_options::yield_to_workers with real workers: the primary's thread runs as SCHED_BATCH
// while the primary runs and as before once it has gone; its workers, processes (fork, exec) or
// threads, run as SCHED_OTHER; in thread mode, off, or from a policy someone chose, nothing
// changes.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <dirent.h>
#include <sched.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <set>
#include <string>

using namespace cluster;
using support::fork_worker;
using support::proto;
using support::scripted;
using support::with_primary;
namespace behaviour = support::behaviour;

namespace {

// This thread as `policy` until the end of the scope, then SCHED_OTHER again.
class running_as {
public:
    explicit running_as(int policy) {
        const sched_param none{};
        REQUIRE(::sched_setscheduler(0, policy, &none) == 0);
    }
    running_as(const running_as&) = delete;
    running_as& operator=(const running_as&) = delete;
    ~running_as() {
        const sched_param none{};
        ::sched_setscheduler(0, SCHED_OTHER, &none);
    }
};

// The worker serving `slot`, once it is online: its code has begun, after the policy's change.
task<std::shared_ptr<worker_handle<proto>>> online_in(primary<proto>& p, unsigned slot) {
    auto h = co_await support::bounded(p.worker_in_slot(slot), "the slot's worker");
    REQUIRE(h.has_value());
    co_return *h;
}

// The threads of this process, by id.
std::set<pid_t> threads_now() {
    std::set<pid_t> ids;
    DIR* dir = ::opendir("/proc/self/task");
    REQUIRE(dir);
    while (const dirent* e = ::readdir(dir))
        if (e->d_name[0] != '.') ids.insert(static_cast<pid_t>(std::stol(e->d_name)));
    ::closedir(dir);
    return ids;
}

// A thread's name, as the kernel keeps it.
std::string name_of(pid_t tid) {
    std::ifstream comm("/proc/self/task/" + std::to_string(tid) + "/comm");
    std::string name;
    std::getline(comm, name);
    return name;
}

}  // namespace

TEST_CASE("yield_to_workers: the primary runs as SCHED_BATCH, its fork and exec workers as SCHED_OTHER, and the "
          "policy is given back when the primary goes") {
    const auto mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO((mode == start_mode::fork ? "fork mode" : "exec mode"));
    CHECK(primary_options{}.yield_to_workers);
    REQUIRE(::sched_getscheduler(0) == SCHED_OTHER);
    with_primary(scripted(mode, behaviour::answer_work), [](primary<proto>& p) -> task<void> {
        CHECK(::sched_getscheduler(0) == SCHED_BATCH);
        for (unsigned slot = 1; slot <= 2; ++slot) {
            (void)co_await fork_worker(p);
            const auto h = co_await online_in(p, slot);
            CHECK(::sched_getscheduler(h->pid()) == SCHED_OTHER);
        }
    });
    CHECK(::sched_getscheduler(0) == SCHED_OTHER);
}

TEST_CASE("yield_to_workers: a thread worker's thread runs as SCHED_OTHER beside the primary's SCHED_BATCH, and a "
          "primary in thread mode keeps SCHED_OTHER") {
    SECTION("thread workers of a primary in fork mode") {
        const auto before = threads_now();
        with_primary(scripted(start_mode::fork, behaviour::answer_work), [&](primary<proto>& p) -> task<void> {
            fork_options as_thread;
            as_thread.mode = start_mode::thread;
            for (unsigned slot = 1; slot <= 2; ++slot) {
                (void)co_await fork_worker(p, as_thread);
                (void)co_await online_in(p, slot);
            }
            CHECK(::sched_getscheduler(0) == SCHED_BATCH);
            int workers = 0;
            for (const pid_t tid : threads_now()) {
                // The kernel's io_uring helpers (iou-wrk, iou-sqp) take their creator's policy.
                if (before.count(tid) != 0 || name_of(tid).rfind("iou-", 0) == 0) continue;
                INFO("thread " << tid << " (" << name_of(tid) << ")");
                CHECK(::sched_getscheduler(tid) == SCHED_OTHER);
                ++workers;
            }
            CHECK(workers >= 2);
        });
    }
    SECTION("a primary in thread mode") {
        with_primary(scripted(start_mode::thread, behaviour::answer_work), [](primary<proto>& p) -> task<void> {
            (void)co_await fork_worker(p);
            (void)co_await online_in(p, 1);
            CHECK(::sched_getscheduler(0) == SCHED_OTHER);
        });
    }
}

TEST_CASE("yield_to_workers: off, the primary keeps SCHED_OTHER, and from a policy someone chose, it and its workers "
          "keep that") {
    SECTION("off") {
        auto o = scripted(start_mode::fork, behaviour::answer_work);
        o.yield_to_workers = false;
        with_primary(o, [](primary<proto>& p) -> task<void> {
            CHECK(::sched_getscheduler(0) == SCHED_OTHER);
            (void)co_await fork_worker(p);
            const auto h = co_await online_in(p, 1);
            CHECK(::sched_getscheduler(h->pid()) == SCHED_OTHER);
        });
    }
    SECTION("chosen: SCHED_BATCH for the whole service, as systemd's CPUSchedulingPolicy=batch sets it") {
        const running_as batch(SCHED_BATCH);
        with_primary(scripted(start_mode::fork, behaviour::answer_work), [](primary<proto>& p) -> task<void> {
            (void)co_await fork_worker(p);
            const auto h = co_await online_in(p, 1);
            CHECK(::sched_getscheduler(h->pid()) == SCHED_BATCH);
        });
        CHECK(::sched_getscheduler(0) == SCHED_BATCH);
    }
}
