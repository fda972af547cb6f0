// The restart policy and heartbeats with real processes, and with threads where a thread
// worker does the same: a crash loop hits a cap and run() says so (the period's cap, and with
// the default policy, one slot's unstable exits in a row), the backoff grows and resets, which
// exits each restart_mode replaces, replacements run the worker's code again (fork and exec
// mode), hung workers are killed and replaced, and busy ones are not.
//
// In thread mode too (GENERATE over start modes): what is the policy's (caps, backoff,
// min_uptime, which exits each mode replaces, restart delays), since a thread's exception is
// its crash and kill(SIGKILL) abandons it as if killed (docs/threads.md); a worker that left
// and then hangs, which the supervisor's SIGKILL abandons; and the heartbeats that are not
// about killing: a busy worker, a burst of messages, heartbeat_timeout 0, a stalled primary, a
// worker that left. Processes only: a worker that _exit(1)s (in a thread, that ends the
// process), and the SIGTERM and SIGKILL of a hung worker, since a thread cannot be signalled;
// what a hung thread does instead (hung_thread_action) is cluster/threads'.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/descriptors.hpp"
#include "support/events.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/thread_ends.hpp"
#include "support/waiting.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::hello;
using support::proto;
namespace behaviour = support::behaviour;
using support::all_of;
using support::as_configured;
using support::bounded;
using support::events_through;
using support::exit_of;
using support::fork_worker;
using support::kinds_of;
using support::no_children;
using support::process_gone;
using support::story_of;
using support::wait_limit;

namespace {

using handle = worker_handle<proto>;
using worker_main = primary<proto>::worker_main;
using clock_type = std::chrono::steady_clock;
using support::open_fd_count;

// Runs body against a primary of main's workers (see support::with_primary).
template <class Body>
void with_restart_policy(primary_options o, worker_main main, Body&& body) {
    support::with_primary<proto>(std::move(o), std::move(main), std::forward<Body>(body));
}

// A policy whose delays are exact and short, so the sequence of restarts is the test's to check.
primary_options quick_restarts(restart_mode mode = restart_mode::permanent, start_mode start = start_mode::fork) {
    primary_options o;
    o.mode = start;
    o.restart.mode = mode;
    o.restart.initial_delay = 1ms;
    o.restart.factor = 1;
    o.restart.jitter = 0;
    return o;
}

// ---- what the fork-mode workers do (in the child: no Catch assertions) ----

task<void> say_hello(worker<proto>& w) {
    const hello h{w.id()};
    auto sent = co_await w.send(h);
    if (!sent) throw std::system_error(sent.error(), "send");
}

// The primary has this worker's hello once the reply comes back: what the worker does next
// (spinning, say) cannot keep the hello from the primary.
task<void> say_hello_and_wait_for_reply(worker<proto>& w) {
    const hello h{w.id()};
    auto answered = co_await w.request<hello>(h, wait_limit);
    if (!answered) throw std::system_error(answered.error(), "request");
}

// Abandoned, a thread worker ends here once its link is cut.
task<void> stay_until_disconnected(worker<proto>& w) {
    support::thread_ends::watch();
    while (auto m = co_await w.receive()) {}
}

task<void> crash_at_once(worker<proto>&) {
    throw std::runtime_error("thrown on purpose by the test's worker");
    co_return;
}

task<void> exit_1_at_once(worker<proto>&) {
    ::_exit(1);
    co_return;
}

// The first worker of a test does what the test is about; its replacements stay until disconnected.
bool is_first(const worker<proto>& w) { return w.id() == 1; }

// Keeps the CPU without ever giving the loop a turn: no heartbeat goes out.
[[noreturn]] void spin_forever() {
    volatile std::uint64_t spins = 0;
    for (;;) spins = spins + 1;
}

void spin_for(clock_type::duration d) {
    volatile std::uint64_t spins = 0;
    for (const auto until = clock_type::now() + d; clock_type::now() < until;) spins = spins + 1;
}

}  // namespace

// ---- crash loops ----

namespace {

constexpr unsigned crash_cap = 3;

primary_options crash_loop_options(start_mode start) {
    auto o = quick_restarts(restart_mode::permanent, start);
    o.restart.max_restarts = crash_cap;
    o.restart.period = 10s;
    return o;
}

// run()'s main: records every event until the restart policy gives up.
task<void> record_until_gave_up(primary<proto>& p, std::vector<event<proto>>& seen) {
    (void)co_await p.fork(as_configured);
    do seen.push_back(co_await bounded(p.next_event()));
    while (!seen.back().is<gave_up_event>());
}

// The supervisor's part of the events: starts, exits and what the policy made of them.
std::vector<event<proto>> supervision_only(const std::vector<event<proto>>& events) {
    std::vector<event<proto>> out;
    for (const auto& e : events)
        if (e.is<fork_event>() || e.is<exit_event>() || e.is<restart_scheduled_event>() || e.is<gave_up_event>())
            out.push_back(e);
    return out;
}

// What a crash loop of `restarts` restarts looks like: each worker starts and dies, and is
// replaced, until the exit one too many.
std::string crash_loop_story(unsigned restarts) {
    std::string out;
    for (unsigned id = 1; id <= restarts + 1; ++id) {
        const std::string w = std::to_string(id);
        out += w + " fork, " + w + " exit, " + (id <= restarts ? w + " restart_scheduled, " : "");
    }
    return out + std::to_string(restarts + 1) + " gave_up";
}

// How a crash loop's workers die: a thread's _exit(1) would end the process, so only a
// process does that.
struct crash_loop_case {
    start_mode mode = start_mode::fork;
    bool throws = true;
};

}  // namespace

static_assert(exit_code::gave_up != exit_code::ok && exit_code::gave_up != exit_code::failed);

TEST_CASE("a crash loop hits the restart cap: restarts, then gave_up, and run() returns exit_code::gave_up") {
    const crash_loop_case c = GENERATE(
        values<crash_loop_case>({{start_mode::fork, true}, {start_mode::fork, false}, {start_mode::thread, true}}));
    const start_mode mode = c.mode;
    const bool throws = c.throws;
    INFO(to_string(mode) << " mode" << (throws ? ", the workers throw" : ", the workers _exit(1)"));
    std::vector<event<proto>> seen;
    int code = -1;
    const std::size_t fds = open_fd_count();
    {
        io_context ctx;
        primary<proto> p(crash_loop_options(mode), throws ? crash_at_once : exit_1_at_once);
        code = sync_wait(p.run([&seen](primary<proto>& self) { return record_until_gave_up(self, seen); }));
        CHECK(p.gave_up());
        CHECK(p.target() == 0);
        CHECK(p.workers().empty());
    }
    CHECK(code == exit_code::gave_up);
    REQUIRE(story_of(supervision_only(seen)) == crash_loop_story(crash_cap));
    // A worker that _exits at once may die before its online message is out.
    if (throws) CHECK(all_of<online_event>(seen).size() == crash_cap + 1);

    for (const auto& gone : all_of<exit_event>(seen)) {
        CHECK(gone.status.code == 1);
        CHECK(gone.status.signal == 0);
        CHECK(gone.reason == stop_reason::none);
        CHECK_FALSE(gone.exited_after_disconnect);
    }
    const auto restarts = all_of<restart_scheduled_event>(seen);
    for (unsigned i = 0; i < restarts.size(); ++i) {
        CHECK(restarts[i].worker_id == i + 1);
        CHECK(restarts[i].attempt == i + 1);
        CHECK(restarts[i].delay == 1ms);
    }
    const auto gave_up = all_of<gave_up_event>(seen).front();
    CHECK(gave_up.worker_id == crash_cap + 1);
    CHECK(gave_up.what == "more than 3 restarts within 10000 ms");

    // A thread worker's pid is the primary's own.
    if (mode != start_mode::thread)
        for (const auto& forked : all_of<fork_event>(seen)) CHECK(process_gone(forked.pid));
    CHECK(no_children());
    CHECK(open_fd_count() == fds);
}

// With the defaults, the backoff spaces one slot's restarts too far apart for 10 within
// 10 s: the unstable exits in a row are what stop it, after some 11 s of backoff.
TEST_CASE("with the default policy, a worker that fails at every start is given up on within 30 s, saying why") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    primary_options o;
    o.mode = mode;
    std::vector<event<proto>> seen;
    int code = -1;
    const auto started = clock_type::now();
    {
        io_context ctx;
        primary<proto> p(o, crash_at_once);
        code = sync_wait(p.run([&seen](primary<proto>& self) { return record_until_gave_up(self, seen); }));
    }
    const auto took = clock_type::now() - started;
    CHECK(code == exit_code::gave_up);
    CHECK(took < 30s);
    const restart_policy defaults;
    REQUIRE(story_of(supervision_only(seen)) == crash_loop_story(defaults.max_unstable_restarts));
    CHECK(all_of<gave_up_event>(seen).front().what ==
          "more than 10 unstable restarts of slot 1: each worker exited within 1000 ms of coming online, or before");
    CHECK(no_children());
}

namespace {

constexpr auto min_uptime = 300ms;
constexpr unsigned stays_up = 3;  // the one worker that stays up past min_uptime

// Every worker crashes at once, but stays_up first waits for the primary's word that it
// has been online for min_uptime.
task<void> crash_unless_it_stays_up(worker<proto>& w) {
    if (w.id() == stays_up) (void)co_await w.receive();
    throw std::runtime_error("crashing on purpose");
}

// record_until_gave_up(), and stays_up is told to go once min_uptime has passed since the
// primary saw it online: by the primary's clock, which is the one the policy reads, so no
// lateness of either process can make its uptime short. The timer is the uptime under
// test, not a guess at how long something takes.
task<void> release_after_min_uptime(primary<proto>& p, std::vector<event<proto>>& seen) {
    (void)co_await p.fork(as_configured);
    do {
        seen.push_back(co_await bounded(p.next_event()));
        if (const auto* online = seen.back().get_if<online_event>(); online && online->worker_id == stays_up) {
            co_await io::sleep_for(min_uptime);
            const support::note go{stays_up, "go"};
            (void)co_await seen.back().worker()->send(go);
        }
    } while (!seen.back().is<gave_up_event>());
}

}  // namespace

TEST_CASE("a worker that stays up for min_uptime after coming online starts its slot's unstable count over") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = quick_restarts(restart_mode::permanent, mode);
    o.restart.min_uptime = min_uptime;
    o.restart.max_unstable_restarts = 2;
    o.restart.max_restarts = 100;
    std::vector<event<proto>> seen;
    int code = -1;
    {
        io_context ctx;
        primary<proto> p(o, crash_unless_it_stays_up);
        code = sync_wait(p.run([&seen](primary<proto>& self) { return release_after_min_uptime(self, seen); }));
    }
    CHECK(code == exit_code::gave_up);
    // Workers 1 and 2 are unstable, 3 is not, 4 and 5 are again: 6 is one too many. Without
    // the count starting over, 4 would have been.
    REQUIRE(story_of(supervision_only(seen)) == crash_loop_story(5));
    CHECK(all_of<gave_up_event>(seen).front().what ==
          "more than 2 unstable restarts of slot 1: each worker exited within 300 ms of coming online, or before");
}

TEST_CASE("restarts further apart than the period never add up to a crash loop") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = quick_restarts(restart_mode::permanent, mode);
    o.restart.initial_delay = 20ms;
    o.restart.max_restarts = 1;
    o.restart.period = 5ms;  // shorter than any two restarts are apart: each is the only one in its period
    with_restart_policy(o, crash_at_once, [](primary<proto>& p) -> task<void> {
        (void)co_await fork_worker(p);
        for (unsigned id = 1; id <= 4; ++id) {
            auto events = co_await events_through(p, id, event_kind::restart_scheduled);
            CHECK(all_of<gave_up_event>(events).empty());
            CHECK(events.back().get_if<restart_scheduled_event>()->attempt == id);
        }
        CHECK_FALSE(p.gave_up());
        CHECK(p.target() == 1);
    });
}

// ---- backoff ----

namespace {

constexpr auto stable_uptime = 600ms;
constexpr unsigned steady_worker = 5;  // the one worker that stays up longer than stable_uptime

// Every worker crashes at once, but steady_worker first stays up for stable_uptime and more.
task<void> crash_unless_steady(worker<proto>& w) {
    if (w.id() == steady_worker) co_await io::sleep_for(stable_uptime + 100ms);
    throw std::runtime_error("crashing on purpose");
}

}  // namespace

TEST_CASE("the backoff doubles up to max_delay, and a worker up for stable_uptime resets it") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = quick_restarts(restart_mode::permanent, mode);
    o.restart.initial_delay = 10ms;
    o.restart.factor = 2;
    o.restart.max_delay = 40ms;
    o.restart.stable_uptime = stable_uptime;
    o.restart.max_restarts = 100;
    with_restart_policy(o, crash_unless_steady, [](primary<proto>& p) -> task<void> {
        (void)co_await fork_worker(p);
        std::vector<restart_scheduled_event> restarts;
        for (unsigned id = 1; id <= steady_worker + 1; ++id) {
            auto events = co_await events_through(p, id, event_kind::restart_scheduled);
            restarts.push_back(*events.back().get_if<restart_scheduled_event>());
        }
        std::vector<long> delays;
        std::vector<unsigned> attempts;
        for (const auto& r : restarts) {
            delays.push_back(static_cast<long>(r.delay.count()));
            attempts.push_back(r.attempt);
        }
        // Worker 5's exit comes after a stable uptime: back to the initial delay, attempt 1.
        CHECK(delays == std::vector<long>{10, 20, 40, 40, 10, 20});
        CHECK(attempts == std::vector<unsigned>{1, 2, 3, 4, 1, 2});
    });
}

// ---- which exits each mode replaces ----

namespace {

enum class ending {
    returns_0,     // the worker's code returns
    throws,        // it throws: exit code 1
    killed,        // the test SIGKILLs it
    leaves,        // it calls w.disconnect(), then returns
    disconnected,  // the test calls h.disconnect(); it returns
};

const char* ending_name(ending how) {
    switch (how) {
    case ending::returns_0: return "returns 0";
    case ending::throws: return "throws";
    case ending::killed: return "is SIGKILLed";
    case ending::leaves: return "disconnects itself";
    case ending::disconnected: return "is disconnected by the primary";
    }
    return "?";
}

const char* mode_name(restart_mode m) {
    switch (m) {
    case restart_mode::permanent: return "permanent";
    case restart_mode::transient: return "transient";
    case restart_mode::temporary: return "temporary";
    }
    return "?";
}

// h.disconnect() is the primary's code removing a worker: no mode replaces it.
bool replaced(restart_mode mode, ending how) {
    if (how == ending::disconnected) return false;
    switch (mode) {
    case restart_mode::permanent: return true;
    case restart_mode::temporary: return false;
    case restart_mode::transient: return how == ending::throws || how == ending::killed;
    }
    return false;
}

task<void> first_returns(worker<proto>& w) {
    if (!is_first(w)) co_await stay_until_disconnected(w);
}

task<void> first_throws(worker<proto>& w) {
    if (!is_first(w)) co_return co_await stay_until_disconnected(w);
    throw std::runtime_error("thrown on purpose by the test's worker");
}

task<void> first_leaves(worker<proto>& w) {
    if (is_first(w)) {
        auto left = co_await w.disconnect();
        if (!left) throw std::system_error(left.error(), "disconnect");
    }
    co_await stay_until_disconnected(w);
}

worker_main code_for(ending how) {
    switch (how) {
    case ending::returns_0: return first_returns;
    case ending::throws: return first_throws;
    case ending::leaves: return first_leaves;
    case ending::killed:
    case ending::disconnected: return stay_until_disconnected;
    }
    return stay_until_disconnected;
}

// What the test does to worker h, once online, to end it as `how` says.
task<void> end_worker(handle& h, ending how) {
    if (how == ending::killed) REQUIRE(h.kill(SIGKILL).has_value());
    if (how == ending::disconnected) {
        auto left = co_await bounded(h.disconnect());
        REQUIRE(left.has_value());
    }
}

void check_exit(const exit_event& gone, ending how) {
    CHECK(gone.status.signal == (how == ending::killed ? SIGKILL : 0));
    CHECK(gone.status.code == (how == ending::throws ? 1 : 0));
    CHECK(gone.exited_after_disconnect == (how == ending::leaves || how == ending::disconnected));
    CHECK(gone.reason == (how == ending::disconnected ? stop_reason::disconnect : stop_reason::none));
}

}  // namespace

// A thread worker's SIGKILL abandons it, which ends it as if killed (docs/threads.md).
TEST_CASE("permanent replaces every exit, transient only crashes, temporary none, and h.disconnect() is a removal") {
    const start_mode start = GENERATE(start_mode::fork, start_mode::thread);
    const restart_mode mode = GENERATE(restart_mode::permanent, restart_mode::transient, restart_mode::temporary);
    const ending how =
        GENERATE(ending::returns_0, ending::throws, ending::killed, ending::leaves, ending::disconnected);
    const bool expect_restart = replaced(mode, how);
    INFO(to_string(start) << " mode, " << mode_name(mode) << ", the worker " << ending_name(how)
                          << (expect_restart ? ": replaced" : ": not replaced"));
    support::thread_ends threads_ended;
    with_restart_policy(quick_restarts(mode, start), code_for(how), [&](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        (void)co_await events_through(p, 1, event_kind::online);
        co_await end_worker(h, how);
        auto ended = co_await events_through(p, 1, event_kind::exit);
        check_exit(exit_of(ended), how);
        // An abandoned thread's descriptors are its own until it returns.
        if (start == start_mode::thread && how == ending::killed) co_await threads_ended.until(1);
        // The policy decided as the exit event was queued: a restart is pending or the slot is gone.
        CHECK(p.target() == (expect_restart ? 1u : 0u));
        if (expect_restart) {
            auto next = co_await bounded(p.next_event());
            REQUIRE(next.is<restart_scheduled_event>());
            CHECK(next.worker_id() == 1);
            CHECK(next.get_if<restart_scheduled_event>()->attempt == 1);
            auto replacement = co_await events_through(p, 2, event_kind::online);
            CHECK(kinds_of(replacement, 2) == "fork online");
            CHECK(support::listed_ids(p) == std::vector<unsigned>{2});
            CHECK(p.target() == 1);
        } else {
            // Anything the policy said about worker 1 would come before this fork's event.
            (void)co_await fork_worker(p);
            auto next = co_await bounded(p.next_event());
            CHECK(story_of(std::vector<event<proto>>{next}) == "2 fork");
            CHECK(p.target() == 1);
        }
    });
}

TEST_CASE("a transient worker that disconnected itself and then crashed is not replaced") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto leave_then_crash = [](worker<proto>& w) -> task<void> {
        auto left = co_await w.disconnect();
        if (!left) throw std::system_error(left.error(), "disconnect");
        throw std::runtime_error("crashing after the disconnect");
    };
    with_restart_policy(quick_restarts(restart_mode::transient, mode), leave_then_crash,
                        [](primary<proto>& p) -> task<void> {
                            (void)co_await fork_worker(p);
                            auto ended = co_await events_through(p, 1, event_kind::exit);
                            CHECK(exit_of(ended).status.code == 1);
                            CHECK(exit_of(ended).exited_after_disconnect);
                            CHECK(p.target() == 0);
                        });
}

namespace {

// Set by the test once a hung thread worker has been abandoned, so that the thread ends: a
// process's copy is never set, and it hangs until killed.
std::atomic<bool> hang_over{false};

}  // namespace

// Its channel is gone, so no heartbeat can say it is hung: the time to leave says it. A
// thread worker's SIGKILL abandons it, ending it as if killed (docs/threads.md).
TEST_CASE("a worker that disconnected itself and then hangs is SIGKILLed after shutdown_timeout, as hung") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    hang_over = false;
    auto leave_then_hang = [](worker<proto>& w) -> task<void> {
        if (!is_first(w)) co_return co_await stay_until_disconnected(w);
        support::thread_ends::watch();
        auto left = co_await w.disconnect();
        if (!left) throw std::system_error(left.error(), "disconnect");
        while (!hang_over.load()) hang_over.wait(false);  // not even its loop runs
    };
    support::thread_ends threads_ended;
    auto o = quick_restarts(restart_mode::permanent, mode);
    o.shutdown_timeout = 200ms;
    with_restart_policy(std::move(o), leave_then_hang, [&](primary<proto>& p) -> task<void> {
        (void)co_await fork_worker(p);
        auto ended = co_await events_through(p, 1, event_kind::exit);
        hang_over = true;
        hang_over.notify_all();
        if (mode == start_mode::thread) co_await threads_ended.until(1);
        const exit_event& gone = exit_of(ended);
        CHECK(gone.status.signal == SIGKILL);
        CHECK(gone.exited_after_disconnect);
        CHECK(gone.reason == stop_reason::hung);
        auto replacement = co_await events_through(p, 2, event_kind::online);  // its slot is filled again
        CHECK(kinds_of(replacement, 2) == "fork online");
    });
}

// ---- replacements ----

namespace {

std::string resolved_path(const char* path) {
    char resolved[PATH_MAX];
    return ::realpath(path, resolved) ? resolved : "";
}

primary_options reporting_workers(start_mode mode) {
    auto o = quick_restarts();
    o.restart.initial_delay = 50ms;  // a few restarts while the test looks, not a storm
    o.mode = mode;
    if (mode == start_mode::exec) {
        o.exec = support::program;
        o.args = std::vector<std::string>{};
    }
    o.env[support::behaviour_env] = behaviour::report_identity;
    return o;
}

}  // namespace

TEST_CASE(
    "a replacement is a new worker: a new id (a new process too), its own fork and online, the worker's code again") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec, start_mode::thread);
    INFO(to_string(mode) << " mode");
    const std::string exe =
        mode == start_mode::exec ? resolved_path(support::program) : resolved_path("/proc/self/exe");
    // report_identity returns once it has reported: permanent replaces it after its exit code 0.
    with_restart_policy(reporting_workers(mode), support::worker_main, [&](primary<proto>& p) -> task<void> {
        const pid_t first_pid = (co_await fork_worker(p)).pid();
        auto first = co_await events_through(p, 1, event_kind::restart_scheduled);
        CHECK(kinds_of(first, 1) == "fork online message disconnect exit restart_scheduled");
        auto second = co_await events_through(p, 2, event_kind::message);
        CHECK(kinds_of(second, 2) == "fork online message");
        const auto forked = all_of<fork_event>(second).front();
        if (mode == start_mode::thread)
            CHECK(forked.pid == ::getpid());  // a thread's pid is the primary's
        else
            CHECK(forked.pid != first_pid);
        const auto* me = second.back().message<support::identity>();
        REQUIRE(me);
        CHECK(me->worker);
        CHECK(me->worker_id == 2);
        CHECK(me->exe == exe);
    });
}

TEST_CASE("a replacement starts no sooner than its restart delay") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = quick_restarts(restart_mode::permanent, mode);
    o.restart.initial_delay = 300ms;
    support::thread_ends threads_ended;
    with_restart_policy(o, stay_until_disconnected, [&](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        (void)co_await events_through(p, 1, event_kind::online);
        const auto killed_at = clock_type::now();
        REQUIRE(h.kill(SIGKILL).has_value());
        auto ended = co_await events_through(p, 1, event_kind::restart_scheduled);
        if (mode == start_mode::thread) co_await threads_ended.until(1);  // abandoned: see above
        CHECK(ended.back().get_if<restart_scheduled_event>()->delay == 300ms);
        CHECK(p.target() == 1);
        CHECK(p.workers().empty());
        (void)co_await events_through(p, 2, event_kind::fork);
        CHECK(clock_type::now() - killed_at >= 300ms);
    });
}

// ---- heartbeats ----

namespace {

constexpr auto heartbeat_timeout = 500ms;
constexpr auto kill_timeout = 500ms;
// On top of a deadline, for a loaded machine under ASan.
constexpr auto margin = 3s;

primary_options watched(start_mode start = start_mode::fork) {
    auto o = quick_restarts(restart_mode::permanent, start);
    o.heartbeat_timeout = heartbeat_timeout;
    o.kill_timeout = kill_timeout;
    return o;
}

task<void> spin_after_hello(worker<proto>& w) {
    if (!is_first(w)) co_return co_await stay_until_disconnected(w);
    co_await say_hello_and_wait_for_reply(w);
    spin_forever();
}

task<void> spin_deaf_to_sigterm(worker<proto>& w) {
    if (!is_first(w)) co_return co_await stay_until_disconnected(w);
    ::signal(SIGTERM, SIG_IGN);
    co_await say_hello_and_wait_for_reply(w);
    spin_forever();
}

task<void> spin_with_sigterm_blocked(worker<proto>& w) {
    if (!is_first(w)) co_return co_await stay_until_disconnected(w);
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    ::sigprocmask(SIG_BLOCK, &term, nullptr);
    co_await say_hello_and_wait_for_reply(w);
    spin_forever();
}

// Answers the worker's hello, after which it spins; returns when it did.
task<clock_type::time_point> let_it_spin(primary<proto>& p) {
    auto asked = co_await bounded(p.next_message<hello>());
    const hello answer = asked.value;
    auto replied = co_await p.reply(asked, answer);
    REQUIRE(replied.has_value());
    co_return clock_type::now();
}

// Worker 1, forked, spins until the primary kills it as hung: its exit, and how long
// after it began to spin that came.
struct killed_spinning {
    exit_event gone;
    clock_type::duration took;
};

task<killed_spinning> spin_until_killed(primary<proto>& p) {
    (void)co_await fork_worker(p);
    const auto spinning_since = co_await let_it_spin(p);
    auto ended = co_await events_through(p, 1, event_kind::exit);
    co_return killed_spinning{exit_of(ended), clock_type::now() - spinning_since};
}

}  // namespace

TEST_CASE("a worker spinning without turning its loop is SIGTERMed as hung and replaced") {
    with_restart_policy(watched(), spin_after_hello, [](primary<proto>& p) -> task<void> {
        const auto killed = co_await spin_until_killed(p);
        const auto& gone = killed.gone;
        const auto took = killed.took;
        CHECK(gone.hung());
        CHECK(gone.reason == stop_reason::hung);
        CHECK(gone.status.signal == SIGTERM);
        CHECK_FALSE(gone.exited_after_disconnect);
        CHECK(took < heartbeat_timeout + margin);
        auto next = co_await bounded(p.next_event());
        CHECK(story_of(std::vector<event<proto>>{next}) == "1 restart_scheduled");
        auto replacement = co_await events_through(p, 2, event_kind::online);
        CHECK(kinds_of(replacement, 2) == "fork online");
    });
}

TEST_CASE("a hung worker that does not die of SIGTERM is SIGKILLed after kill_timeout") {
    const bool ignores = GENERATE(true, false);
    INFO((ignores ? "SIGTERM ignored" : "SIGTERM blocked"));
    const worker_main spin = ignores ? spin_deaf_to_sigterm : spin_with_sigterm_blocked;
    with_restart_policy(watched(), spin, [](primary<proto>& p) -> task<void> {
        const auto killed = co_await spin_until_killed(p);
        const auto& gone = killed.gone;
        const auto took = killed.took;
        CHECK(gone.hung());
        CHECK(gone.status.signal == SIGKILL);
        CHECK(took >= kill_timeout);
        CHECK(took < heartbeat_timeout + kill_timeout + margin);
        auto replacement = co_await events_through(p, 2, event_kind::online);
        CHECK(kinds_of(replacement, 1) == "restart_scheduled");
    });
}

namespace {

// Works for several heartbeat timeouts, in small pieces, each followed by a turn of the loop.
task<void> busy_in_pieces(worker<proto>& w) {
    for (const auto until = clock_type::now() + 3 * heartbeat_timeout; clock_type::now() < until;) {
        spin_for(1ms);
        auto turned = co_await io::nop();
        if (!turned) throw std::system_error(turned.error(), "nop");
    }
    co_await say_hello(w);
    co_await stay_until_disconnected(w);
}

// Spins for longer than any heartbeat timeout of these tests, without a turn of its loop.
task<void> spin_a_while(worker<proto>& w) {
    spin_for(3 * heartbeat_timeout);
    co_await say_hello(w);
    co_await stay_until_disconnected(w);
}

// Worker 1 is still there after what it was doing, and leaves when asked.
task<void> check_it_survived(primary<proto>& p, handle& h) {
    auto done = co_await events_through(p, 1, event_kind::message);
    CHECK(kinds_of(done, 1) == "fork online message");
    CHECK_FALSE(h.is_dead());
    auto left = co_await bounded(h.disconnect());
    CHECK(left.has_value());
    auto ended = co_await events_through(p, 1, event_kind::exit);
    CHECK(exit_of(ended).reason == stop_reason::disconnect);
    CHECK(exit_of(ended).status.success());
}

}  // namespace

TEST_CASE("a worker that keeps its loop turning while busy is not hung") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    with_restart_policy(watched(mode), busy_in_pieces, [](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        co_await check_it_survived(p, h);
    });
}

TEST_CASE("heartbeat_timeout 0 turns the watchdog off: a spinning worker is left alone") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = watched(mode);
    o.heartbeat_timeout = 0ms;
    with_restart_policy(o, spin_a_while, [](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        co_await check_it_survived(p, h);
    });
}

namespace {

constexpr unsigned burst = 100'000;

task<void> send_a_burst(worker<proto>& w) {
    const hello h{w.id()};
    for (unsigned i = 0; i < burst; ++i) {
        auto sent = co_await w.send(h);
        if (!sent) throw std::system_error(sent.error(), "send");
    }
    co_await stay_until_disconnected(w);
}

}  // namespace

// Regression (thread mode): a thread's pipe, emptied by the primary as fast as the worker
// fills it, never made the sender wait, so the worker's loop never turned during the burst
// and its heartbeats were not sent: on a loaded machine the worker was taken for hung.
TEST_CASE("a burst of messages does not hold up the heartbeats behind it into a false hang") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = watched(mode);
    o.heartbeat_timeout = 200ms;
    with_restart_policy(o, send_a_burst, [](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        // A thread worker's burst can outrun this loop on a busy machine, and the primary then
        // drops the oldest message events past max_queued_bytes, as documented: those count as
        // come, since what is checked here is the worker's heartbeats.
        for (unsigned received = 0; received + p.overload().events_dropped < burst;) {
            auto e = co_await bounded(p.next_event());
            if (auto* gone = e.get_if<exit_event>())
                FAIL("worker exited after " << received << " messages, stop reason: " << to_string(gone->reason));
            received += e.message<hello>() != nullptr;
        }
        CHECK_FALSE(h.is_dead());
        auto left = co_await bounded(h.disconnect());
        CHECK(left.has_value());
        auto ended = co_await events_through(p, 1, event_kind::exit);
        CHECK(exit_of(ended).reason == stop_reason::disconnect);
    });
}

// The worker's beats wait in the socket meanwhile: late to be read is not late to be sent.
TEST_CASE("a primary whose own loop stalls past heartbeat_timeout does not take its workers for hung") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    with_restart_policy(watched(mode), stay_until_disconnected, [](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        (void)co_await events_through(p, 1, event_kind::online);
        spin_for(3 * heartbeat_timeout);
        auto left = co_await bounded(h.disconnect());
        CHECK(left.has_value());
        auto ended = co_await events_through(p, 1, event_kind::exit);
        CHECK(exit_of(ended).reason == stop_reason::disconnect);
        CHECK(exit_of(ended).status.success());
    });
}

namespace {

// Leaves the cluster, then finishes its work, its loop turning all along.
task<void> leave_then_finish(worker<proto>& w) {
    auto left = co_await w.disconnect();
    if (!left) throw std::system_error(left.error(), "disconnect");
    (void)co_await io::sleep_for(3 * heartbeat_timeout);
}

}  // namespace

// A regression test: the watchdog went on after the worker disconnected itself, when its
// channel is closed and no beat can come, and SIGTERMed it as hung while it finished its work.
TEST_CASE("a worker that disconnected itself is not hung while it finishes its work") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    with_restart_policy(watched(mode), leave_then_finish, [](primary<proto>& p) -> task<void> {
        (void)co_await fork_worker(p);
        auto ended = co_await events_through(p, 1, event_kind::exit);
        const auto& gone = exit_of(ended);
        CHECK_FALSE(gone.hung());
        CHECK(gone.status.success());
        CHECK(gone.exited_after_disconnect);
    });
}
