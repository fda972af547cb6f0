// Stopping and reloading a supervised cluster with real processes and real signals, sent to
// the test process while run() reads them: graceful stops by SIGTERM, SIGINT and shutdown(),
// shutdown_timeout, a second stop signal, rolling reloads by reload() and SIGHUP, wait_ready
// and ready_timeout, exec-mode reloads that pick up the program replaced on disk, and a binary
// upgrade (SIGUSR2) of a primary whose workers are threads.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/descriptors.hpp"
#include "support/events.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/temp_dir.hpp"
#include "support/waiting.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

extern char** environ;

using namespace cluster;
using namespace std::chrono_literals;
using support::proto;
namespace behaviour = support::behaviour;
using support::bounded;
using support::joined;
using support::no_children;
using support::wait_limit;
using support::with_primary;

namespace {

using handle = worker_handle<proto>;
using steady = std::chrono::steady_clock;
using support::open_fd_count;
using support::send_go;

// A whole run(): its main's waits are bounded too, this is for a stop that never ends it.
constexpr auto run_limit = 30s;
constexpr std::size_t reload_size = 3;

const char* stop_name(int signo) { return signo == 0 ? "shutdown()" : sigabbrev_np(signo); }

// Fork-mode workers that ignore a stop, given `shutdown_timeout` to leave; each writes a
// byte to `notify_fd`, when there is one, once asked to.
primary_options ignoring_workers(std::chrono::milliseconds shutdown_timeout, int notify_fd = -1) {
    auto o = support::scripted(start_mode::fork, behaviour::ignore_stop);
    o.shutdown_timeout = shutdown_timeout;
    if (notify_fd >= 0) o.env[support::setting::notify_fd] = std::to_string(notify_fd);
    return o;
}

task<void> fork_workers(primary<proto>& p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        auto h = co_await bounded(p.try_fork(support::as_configured));
        if (!h) FAIL("fork failed: " << h.error().message());
    }
}

// Forks n workers and takes events until all are online; returns those events (each holds
// its worker's handle for as long as it lives).
task<std::vector<event<proto>>> start_workers(primary<proto>& p, std::size_t n) {
    co_await fork_workers(p, n);
    std::vector<event<proto>> online;
    while (online.size() < n) {
        auto e = co_await bounded(p.next_event());
        if (e.is<online_event>()) online.push_back(std::move(e));
    }
    co_return online;
}

// Takes events until one that done() accepts, which is the last one returned.
template <class Pred>
task<std::vector<event<proto>>> events_until(primary<proto>& p, Pred done) {
    std::vector<event<proto>> seen;
    do seen.push_back(co_await bounded(p.next_event()));
    while (!done(seen.back()));
    co_return seen;
}

task<std::vector<event<proto>>> events_through_reload(primary<proto>& p) {
    const auto is_reload = [](const event<proto>& e) { return e.is<reload_event>(); };
    co_return co_await events_until(p, is_reload);
}

template <class E>
task<std::vector<E>> collect(primary<proto>& p, std::size_t n) {
    std::vector<E> out;
    while (out.size() < n) out.push_back(co_await bounded(p.next<E>()));
    co_return out;
}

std::set<unsigned> listed_ids(const primary<proto>& p) {
    std::set<unsigned> ids;
    for (const handle* h : p.workers()) ids.insert(h->id());
    return ids;
}

std::set<unsigned> ids_from(unsigned first, std::size_t n) {
    std::set<unsigned> ids;
    for (unsigned id = first; id < first + n; ++id) ids.insert(id);
    return ids;
}

// A stop signal to this process: run()'s signalfd reads it.
void raise_signal(int signo) { REQUIRE(::kill(::getpid(), signo) == 0); }

// What main awaits once it has signalled a stop: run() cancels it when the signal is read.
task<void> until_cancelled(primary<proto>& p) {
    (void)co_await p.next<reload_event>();
    FAIL("main was not cancelled by the stop");
}

// Waits until run() has read signo. Nothing tells when that is, so this looks: a signal
// sent again before the last one was read would merge with it, not count twice.
task<void> until_read(int signo) {
    const auto deadline = steady::now() + wait_limit;
    for (;;) {
        sigset_t pending;
        ::sigpending(&pending);
        if (!sigismember(&pending, signo)) co_return;
        if (steady::now() > deadline) FAIL(sigabbrev_np(signo) << " still unread after " << wait_limit.count() << " s");
        (void)co_await io::sleep_for(1ms);
    }
}

// Runs main in p.run(), as a program's primary would, with its stop signals; bounded. Like
// a server's, run() goes on after main returns, until something stops it.
int run_primary(primary<proto>& p, std::function<task<void>(primary<proto>&)> main) {
    auto code = sync_wait(with_timeout(p.run(std::move(main)), run_limit));
    REQUIRE(code.has_value());
    return *code;
}

// The workers whose handles these events hold, once each.
std::vector<handle*> handles_in(const std::vector<event<proto>>& events) {
    std::vector<handle*> out;
    for (const auto& e : events)
        if (e.worker() && std::find(out.begin(), out.end(), e.worker()) == out.end()) out.push_back(e.worker());
    return out;
}

// Asks worker id for a job and checks that it answers.
task<void> check_answers(primary<proto>& p, unsigned id) {
    INFO("worker " << id);
    handle* h = p.worker(id);
    REQUIRE(h);
    auto answer = co_await support::ask(*h, 1000 + id);
    REQUIRE(answer.has_value());
    CHECK(answer->worker_id == id);
}

// ---- graceful stops ----

// What a stop test keeps beyond main: a stop signal cancels main, and once main has
// returned events are dropped, so what is checked afterwards must live here.
struct stop_scene {
    std::vector<event<proto>> online;  // holds the workers' handles past their exits
    std::vector<std::optional<result<support::work_done>>> replies;
    std::vector<exit_event> exits;  // shutdown() from main: main can still take these
    steady::time_point stop_began;
    steady::time_point second_stop;
    scope side;  // tasks that are not main's, so a stop does not cancel them; last: goes first
};

task<void> ask_into(handle& h, std::uint64_t id, std::optional<result<support::work_done>>& out) {
    out = co_await support::ask(h, id);
}

// Gives each worker a job, and returns once every worker holds its own.
task<void> hand_out_jobs(primary<proto>& p, stop_scene& s) {
    const auto workers = handles_in(s.online);
    s.replies.resize(workers.size());
    for (std::size_t i = 0; i < workers.size(); ++i) s.side.spawn(ask_into(*workers[i], i + 1, s.replies[i]));
    for (std::size_t held = 0; held < workers.size(); ++held)
        (void)co_await bounded(p.next_message<support::holding>());
}

// Starts the stop: a signal to this process (main is then cancelled), or shutdown() from
// main, which then takes the exit events.
task<void> stop_by(primary<proto>& p, stop_scene& s, int signo) {
    s.stop_began = steady::now();
    if (signo != 0) {
        raise_signal(signo);
        co_await until_cancelled(p);
        co_return;
    }
    co_await bounded(p.shutdown());
    s.exits = co_await collect<exit_event>(p, s.online.size());
}

void check_exits(const std::vector<exit_event>& exits, bool graceful) {
    for (const auto& x : exits) {
        INFO("worker " << x.worker_id << ": " << x.status.to_string() << ", " << to_string(x.reason));
        CHECK(x.reason == stop_reason::shutdown);
        CHECK(x.exited_after_disconnect);
        CHECK((graceful ? x.status.success() : x.status.signal == SIGKILL));
    }
}

void check_handles(const stop_scene& s, bool graceful) {
    for (const handle* h : handles_in(s.online)) {
        INFO("worker " << h->id());
        REQUIRE(h->is_dead());
        CHECK(h->exited_after_disconnect());
        CHECK((graceful ? h->status()->success() : h->status()->signal == SIGKILL));
    }
}

// Gives body(p, scene) a primary on a fresh loop to run (run_primary) and check, then checks
// that no descriptor and no child outlives it.
template <class Body>
void with_running_primary(primary_options o, Body&& body) {
    const std::size_t fds = open_fd_count();
    {
        io_context ctx;
        primary<proto> p(std::move(o), support::worker_main);
        stop_scene s;
        body(p, s);
        sync_wait(bounded(joined(s.side)));
    }
    CHECK(open_fd_count() == fds);
    CHECK(no_children());
}

}  // namespace

TEST_CASE("SIGTERM, SIGINT or shutdown(): every worker finishes its request, exits 0, and run() returns 0") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    const int stop = GENERATE(SIGTERM, SIGINT, 0);
    INFO(to_string(mode) << " mode"
                         << ", stopped by " << stop_name(stop));
    auto o = support::scripted(mode, behaviour::hold_work);
    o.shutdown_timeout = 8s;
    with_running_primary(o, [&](primary<proto>& p, stop_scene& s) {
        const int code = run_primary(p, [&](primary<proto>& p) -> task<void> {
            s.online = co_await start_workers(p, reload_size);
            co_await hand_out_jobs(p, s);
            co_await stop_by(p, s, stop);
        });
        const auto took = steady::now() - s.stop_began;
        CHECK(code == exit_code::ok);
        CHECK(took >= support::held_work);  // it waited for the work...
        CHECK(took < o.shutdown_timeout);   // ...and not for the deadline
        sync_wait(bounded(joined(s.side)));
        for (std::size_t i = 0; i < s.replies.size(); ++i) {
            INFO("job " << i + 1);
            REQUIRE(s.replies[i].has_value());
            REQUIRE(s.replies[i]->has_value());
            CHECK(s.replies[i]->value().id == i + 1);
        }
        check_handles(s, true);
        // With a signal, main is cancelled before the exits: nobody takes their events.
        if (stop == 0) {
            CHECK(s.exits.size() == reload_size);
            check_exits(s.exits, true);
        }
    });
}

TEST_CASE("workers that ignore the stop are SIGKILLed once shutdown_timeout has passed, and run() returns 0") {
    const int stop = GENERATE(SIGTERM, 0);
    INFO("stopped by " << stop_name(stop));
    auto o = ignoring_workers(600ms);
    with_running_primary(o, [&](primary<proto>& p, stop_scene& s) {
        const int code = run_primary(p, [&](primary<proto>& p) -> task<void> {
            s.online = co_await start_workers(p, 2);
            co_await stop_by(p, s, stop);
        });
        const auto took = steady::now() - s.stop_began;
        CHECK(code == exit_code::ok);
        CHECK(took >= o.shutdown_timeout);
        CHECK(took < o.shutdown_timeout + 5s);
        check_handles(s, false);
        if (stop == 0) check_exits(s.exits, false);
    });
}

namespace {

task<result<std::size_t>> read_some(int fd, std::span<char> into) { co_return co_await io::read(fd, into); }

// Once a worker says it was asked to leave, the stop is under way: signal it again.
task<void> stop_again_once_stopping(int notified, steady::time_point& at) {
    std::array<char, 1> byte{};
    auto n = co_await bounded(read_some(notified, byte));
    REQUIRE(n.has_value());
    REQUIRE(*n == 1);
    at = steady::now();
    raise_signal(SIGINT);
}

}  // namespace

TEST_CASE("a second SIGINT during a graceful stop SIGKILLs the workers at once, long before shutdown_timeout") {
    const auto notify = support::make_pipe();
    auto o = ignoring_workers(60s, notify[1].get());
    with_running_primary(o, [&](primary<proto>& p, stop_scene& s) {
        const int code = run_primary(p, [&](primary<proto>& p) -> task<void> {
            s.online = co_await start_workers(p, 2);
            s.side.spawn(stop_again_once_stopping(notify[0].get(), s.second_stop));
            s.stop_began = steady::now();
            raise_signal(SIGINT);
            co_await until_cancelled(p);
        });
        CHECK(code == exit_code::ok);
        REQUIRE(s.second_stop > s.stop_began);
        CHECK(steady::now() - s.second_stop < 5s);
        check_handles(s, false);
    });
}

namespace {

// Once a worker says it was asked to leave, main's shutdown() is under way: a stop signal.
task<void> signal_once_stopping(int notified, int signo, steady::time_point& at) {
    std::array<char, 1> byte{};
    auto n = co_await bounded(read_some(notified, byte));
    REQUIRE(n.has_value());
    at = steady::now();
    raise_signal(signo);
}

// The signalfds among pid's descriptors.
std::size_t signalfds_of(pid_t pid) {
    std::size_t found = 0;
    const auto dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(entry.path(), ec);
        if (!ec && target.string() == "anon_inode:[signalfd]") ++found;
    }
    return found;
}

task<void> throw_after_starting(primary<proto>& p, stop_scene& s) {
    s.online = co_await start_workers(p, 2);
    throw std::runtime_error("primary_main fails on purpose");
}

}  // namespace

TEST_CASE("a first stop signal while main's own shutdown() runs does not cut the workers' time short") {
    const auto notify = support::make_pipe();
    auto o = ignoring_workers(700ms, notify[1].get());
    with_running_primary(o, [&](primary<proto>& p, stop_scene& s) {
        const int code = run_primary(p, [&](primary<proto>& p) -> task<void> {
            s.online = co_await start_workers(p, 2);
            s.side.spawn(signal_once_stopping(notify[0].get(), SIGTERM, s.second_stop));
            s.stop_began = steady::now();
            co_await p.shutdown();
        });
        CHECK(code == exit_code::ok);
        REQUIRE(s.second_stop > s.stop_began);
        // The workers ignore the stop: only shutdown_timeout ends them, not the signal.
        CHECK(steady::now() - s.stop_began >= o.shutdown_timeout);
        check_handles(s, false);
    });
}

TEST_CASE("a primary_main that throws stops the cluster gracefully, and run() returns exit_code::failed") {
    auto o = support::scripted(start_mode::fork, behaviour::answer_work);
    with_running_primary(o, [&](primary<proto>& p, stop_scene& s) {
        const int code = run_primary(p, [&s](primary<proto>& p) { return throw_after_starting(p, s); });
        CHECK(code == exit_code::failed);
        check_handles(s, true);
    });
}

TEST_CASE("fork-mode workers do not keep run()'s signalfd") {
    auto o = support::scripted(start_mode::fork, behaviour::answer_work);
    with_running_primary(o, [&](primary<proto>& p, stop_scene& s) {
        const int code = run_primary(p, [&](primary<proto>& p) -> task<void> {
            s.online = co_await start_workers(p, 2);
            CHECK(signalfds_of(::getpid()) == 1);  // run()'s own
            for (handle* h : handles_in(s.online)) {
                INFO("worker " << h->id());
                CHECK(signalfds_of(h->pid()) == 0);
            }
            co_await p.shutdown();
        });
        CHECK(code == exit_code::ok);
    });
}

// ---- rolling reloads ----

namespace {

// Requests sent one at a time, round-robin over the ready workers, while a reload runs. A
// worker a request failed on is not asked again, as a client drops a backend that failed.
struct request_load {
    bool stop = false;
    std::map<unsigned, std::size_t> answered;  // by worker id
    std::vector<std::pair<unsigned, std::string>> failed;
    std::set<unsigned> dropped;
    std::size_t most_alive = 0;
};

task<void> keep_asking(primary<proto>& p, request_load& load) {
    std::uint64_t next_id = 0;
    std::size_t turn = 0;
    while (!load.stop) {
        load.most_alive = std::max(load.most_alive, p.workers().size());
        std::vector<handle*> up;
        for (handle* h : p.workers())
            if (h->is_ready() && h->is_connected() && !load.dropped.contains(h->id())) up.push_back(h);
        if (up.empty()) {
            (void)co_await io::sleep_for(1ms);
            continue;
        }
        handle& h = *up[turn++ % up.size()];
        const std::uint64_t id = ++next_id;
        auto answer = co_await support::ask(h, id);
        if (answer && answer->id == id && answer->worker_id == h.id()) {
            ++load.answered[h.id()];
        } else {
            load.dropped.insert(h.id());
            load.failed.emplace_back(h.id(), answer ? "a wrong answer" : answer.error().message());
        }
    }
}

// The events of a reload of n workers, in order: there are never more than n + 1 workers,
// never fewer than n serving (an old one is disconnected only once its replacement is
// online), and every old worker leaves gracefully for the reload.
void check_rolling(const std::vector<event<proto>>& events, const std::set<unsigned>& old, std::size_t n) {
    std::set<unsigned> alive = old, serving = old, replaced;
    for (const auto& e : events) {
        const unsigned id = e.worker_id();
        INFO("event of kind " << static_cast<int>(e.kind()) << " about worker " << id);
        if (e.is<fork_event>()) {
            alive.insert(id);
            CHECK(alive.size() <= n + 1);
        } else if (e.is<online_event>()) {
            serving.insert(id);
        } else if (e.is<disconnect_event>()) {
            CHECK(old.contains(id));
            CHECK(serving.size() >= n + 1);
            serving.erase(id);
        } else if (const auto* x = e.get_if<exit_event>()) {
            REQUIRE(old.contains(id));
            CHECK(x->reason == stop_reason::reload);
            CHECK(x->exited_after_disconnect);
            CHECK(x->status.success());
            alive.erase(id);
            serving.erase(id);
            replaced.insert(id);
        }
    }
    CHECK(replaced == old);
    CHECK(alive.size() == n);
    CHECK(serving == alive);
    const auto* r = events.back().get_if<reload_event>();
    REQUIRE(r);
    CHECK(r->ok);
    CHECK(r->replaced == n);
    CHECK(r->reason == stop_reason::reload);
    CHECK(r->what.empty());
}

void check_load(const request_load& load, const std::set<unsigned>& old, std::size_t n) {
    CHECK(load.most_alive <= n + 1);
    for (const auto& [id, why] : load.failed) {
        INFO("a request to worker " << id << " failed: " << why);
        CHECK(old.contains(id));  // only one that was retiring
    }
    // The first request went out before the reload began: its answer is an old worker's.
    // How many more there are depends on the machine, not on the reload.
    std::size_t by_old = 0;
    for (const auto& [id, count] : load.answered) by_old += old.contains(id) ? count : 0;
    CHECK(by_old > 0);
}

}  // namespace

TEST_CASE("a rolling reload by reload() or SIGHUP replaces every worker one at a time while requests are served") {
    const bool by_signal = GENERATE(false, true);
    INFO((by_signal ? "SIGHUP" : "reload()"));
    with_running_primary(support::scripted(start_mode::fork, behaviour::answer_work),
                         [&](primary<proto>& p, stop_scene& s) {
                             const int code = run_primary(p, [&](primary<proto>& p) -> task<void> {
                                 s.online = co_await start_workers(p, reload_size);
                                 const auto old = listed_ids(p);
                                 request_load load;
                                 scope asking;
                                 asking.spawn(keep_asking(p, load));
                                 std::optional<reload_event> returned;
                                 if (by_signal)
                                     raise_signal(SIGHUP);
                                 else
                                     returned = co_await bounded(p.reload());
                                 const auto events = co_await events_through_reload(p);
                                 load.stop = true;
                                 co_await bounded(joined(asking));
                                 check_rolling(events, old, reload_size);
                                 check_load(load, old, reload_size);
                                 if (returned) CHECK(returned->replaced == reload_size);
                                 const auto now = listed_ids(p);
                                 CHECK(now == ids_from(reload_size + 1, reload_size));
                                 for (unsigned id : now) co_await check_answers(p, id);
                                 co_await bounded(p.shutdown());
                             });
                             CHECK(code == exit_code::ok);
                         });
}

namespace {

task<void> reload_into(primary<proto>& p, std::optional<reload_event>& out) { out = co_await p.reload(); }

// Lets the n workers that were just forked call ready(); returns the events of their
// waiting messages (which hold their handles).
task<std::vector<event<proto>>> let_ready(primary<proto>& p, std::size_t n) {
    std::vector<event<proto>> waited;
    while (waited.size() < n) {
        auto e = co_await bounded(p.next_event());
        if (!e.message<support::waiting>()) continue;
        co_await send_go(p, e.worker_id());
        waited.push_back(std::move(e));
    }
    co_return waited;
}

bool is_message_from(const event<proto>& e, unsigned id, bool readying) {
    return e.worker_id() == id &&
           (readying ? e.message<support::readying>() != nullptr : e.message<support::waiting>() != nullptr);
}

bool is_disconnect_of(const event<proto>& e, unsigned id) { return e.is<disconnect_event>() && e.worker_id() == id; }

// The event of worker id's waiting message; the others before it are dropped.
task<event<proto>> waiting_of(primary<proto>& p, unsigned id) {
    const auto waits = [id](const event<proto>& e) { return is_message_from(e, id, false); };
    auto seen = co_await events_until(p, waits);
    co_return std::move(seen.back());
}

bool any_of(const std::vector<event<proto>>& events, const std::function<bool(const event<proto>&)>& pred) {
    return std::any_of(events.begin(), events.end(), pred);
}

}  // namespace

TEST_CASE("with wait_ready, a reload retires an old worker only after its replacement called ready()") {
    auto o = support::scripted(start_mode::fork, behaviour::ready_on_go);
    o.wait_ready = true;
    with_primary(o, [](primary<proto>& p) -> task<void> {
        co_await fork_workers(p, 2);
        (void)co_await let_ready(p, 2);
        std::optional<reload_event> result;
        scope reloading;
        reloading.spawn(reload_into(p, result));
        for (unsigned old = 1; old <= 2; ++old) {
            const unsigned fresh = old + 2;
            INFO("worker " << fresh << " replaces worker " << old);
            const auto waits = [fresh](const event<proto>& e) { return is_message_from(e, fresh, false); };
            const auto left = [old](const event<proto>& e) { return is_disconnect_of(e, old); };
            auto before = co_await events_until(p, waits);
            CHECK_FALSE(any_of(before, left));
            REQUIRE(p.worker(fresh));
            CHECK(p.worker(fresh)->is_online());
            CHECK_FALSE(p.worker(fresh)->is_ready());
            // Everyone ready still serves, the worker to retire too: it was not asked to
            // leave, or a request sent now would come after that and fail.
            for (unsigned id : listed_ids(p))
                if (id != fresh) co_await check_answers(p, id);
            co_await send_go(p, fresh);
            auto after = co_await events_until(p, left);
            CHECK(any_of(after, [fresh](const event<proto>& e) { return is_message_from(e, fresh, true); }));
            CHECK(p.worker(fresh)->is_ready());
        }
        co_await bounded(joined(reloading));
        REQUIRE(result);
        CHECK(result->ok);
        CHECK(result->replaced == 2);
        CHECK(listed_ids(p) == ids_from(3, 2));
    });
}

TEST_CASE(
    "with wait_ready, a new worker not ready within ready_timeout stops the reload and the old ones keep serving") {
    const char* failure = GENERATE(support::failure::never_ready, support::failure::crash);
    INFO("the second new worker: " << failure);
    auto o = support::scripted(start_mode::fork, behaviour::answer_work);
    o.wait_ready = true;
    o.ready_timeout = 600ms;
    with_primary(o, [&](primary<proto>& p) -> task<void> {
        (void)co_await start_workers(p, 2);
        // Worker 3 replaces worker 1; worker 4, for worker 2, fails.
        auto changed = p.settings();
        changed.env[support::setting::failing_from] = "4";
        changed.env[support::setting::failure] = failure;
        p.setup(changed);
        (void)co_await bounded(p.next<setup_event>());
        const auto began = steady::now();
        const auto result = co_await bounded(p.reload());
        const auto took = steady::now() - began;
        const auto events = co_await events_through_reload(p);
        CHECK_FALSE(result.ok);
        CHECK(result.replaced == 1);
        CHECK_THAT(result.what, Catch::Contains("worker 4"));
        const bool never_ready = std::string(failure) == support::failure::never_ready;
        if (never_ready) {
            CHECK_THAT(result.what, Catch::Contains("not ready within 600 ms"));
            CHECK(took >= o.ready_timeout);
        } else {
            CHECK_THAT(result.what, Catch::Contains("exited before it was ready"));
        }
        const auto* emitted = events.back().get_if<reload_event>();
        REQUIRE(emitted);
        CHECK_FALSE(emitted->ok);
        CHECK(emitted->what == result.what);
        std::map<unsigned, exit_event> exits;
        for (const auto& e : events)
            if (const auto* x = e.get_if<exit_event>()) exits.emplace(x->worker_id, *x);
        REQUIRE(exits.size() == 2);
        REQUIRE(exits.contains(1));
        REQUIRE(exits.contains(4));
        CHECK(exits[1].reason == stop_reason::reload);
        if (never_ready) {
            CHECK(exits[4].reason == stop_reason::not_ready);
            CHECK(exits[4].status.signal == SIGKILL);
        } else {
            CHECK(exits[4].reason == stop_reason::none);  // it ended on its own, before any kill
            CHECK(exits[4].status.code == 1);
        }
        CHECK(listed_ids(p) == std::set<unsigned>{2, 3});
        co_await check_answers(p, 2);
        co_await check_answers(p, 3);
    });
}

// ---- exec mode: the program on disk ----

namespace {

std::uint64_t inode_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw std::system_error(errno, std::system_category(), "stat " + path);
    return st.st_ino;
}

// Puts a fresh copy of the fixture at path as an upgrade would: written beside it, then
// renamed over it, so the running copies keep their file and the path names a new one.
void install_fixture(const std::string& path) {
    const std::string beside = path + ".new";
    std::filesystem::copy_file(support::program, beside, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(beside, path);
}

// The inodes that workers reported, by worker id.
task<std::map<unsigned, std::uint64_t>> identities(primary<proto>& p, std::size_t n) {
    std::map<unsigned, std::uint64_t> out;
    while (out.size() < n) {
        auto me = co_await bounded(p.next_message<support::identity>());
        out[me.from] = me.value.inode;
    }
    co_return out;
}

}  // namespace

TEST_CASE("exec mode: a reload starts the exec program as it is on disk now") {
    const support::temp_dir dir;
    const std::string program = dir.file("worker");
    install_fixture(program);
    auto o = support::scripted(start_mode::exec, behaviour::identify);
    o.exec = program;
    with_primary(o, [&](primary<proto>& p) -> task<void> {
        co_await fork_workers(p, 2);
        const std::uint64_t first = inode_of(program);
        const auto old = co_await identities(p, 2);
        CHECK(old == std::map<unsigned, std::uint64_t>{{1, first}, {2, first}});
        install_fixture(program);
        const std::uint64_t second = inode_of(program);
        REQUIRE(second != first);
        const auto r = co_await bounded(p.reload());
        CHECK(r.ok);
        CHECK(r.replaced == 2);
        const auto fresh = co_await identities(p, 2);
        CHECK(fresh == std::map<unsigned, std::uint64_t>{{3, second}, {4, second}});
    });
}

namespace {

// The fixture started on its own, as a primary, with its stdout (and, if asked, its stderr)
// to read line by line, its environment the test's with `extra_env` ("NAME=value") added.
class fixture_primary {
public:
    explicit fixture_primary(const std::string& program, const std::vector<std::string>& extra_env = {},
                             bool with_stderr = false) {
        auto out = support::make_pipe();
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attributes;
        ::posix_spawn_file_actions_init(&actions);
        ::posix_spawn_file_actions_adddup2(&actions, out[1].get(), STDOUT_FILENO);
        if (with_stderr) ::posix_spawn_file_actions_adddup2(&actions, out[1].get(), STDERR_FILENO);
        std::vector<std::string> env_strings = extra_env;
        for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
        std::vector<char*> env;
        for (auto& e : env_strings) env.push_back(e.data());
        env.push_back(nullptr);
        ::posix_spawnattr_init(&attributes);
        sigset_t none;
        sigemptyset(&none);
        ::posix_spawnattr_setsigmask(&attributes, &none);
        ::posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
        std::string arg0 = program;
        char* argv[] = {arg0.data(), nullptr};
        const int err = ::posix_spawn(&pid_, program.c_str(), &actions, &attributes, argv, env.data());
        ::posix_spawn_file_actions_destroy(&actions);
        ::posix_spawnattr_destroy(&attributes);
        if (err != 0) throw std::system_error(err, std::system_category(), "posix_spawn " + program);
        out_ = std::move(out[0]);
    }
    fixture_primary(const fixture_primary&) = delete;
    fixture_primary& operator=(const fixture_primary&) = delete;
    // A failed test leaves it running: its workers die with it (death_signal).
    ~fixture_primary() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }

    void signal(int signo) const { REQUIRE(::kill(pid_, signo) == 0); }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    // Its next line of output, without the newline; fails the test after wait_limit.
    std::string next_line() {
        const auto deadline = steady::now() + wait_limit;
        for (;;) {
            if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
            pollfd pfd{out_.get(), POLLIN, 0};
            if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0)
                FAIL("no line from the fixture primary within " << wait_limit.count() << " s; so far: " << buffer_);
            char chunk[4096];
            const ssize_t n = ::read(out_.get(), chunk, sizeof chunk);
            if (n <= 0) FAIL("the fixture primary's output ended; so far: " << buffer_);
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

    // Waits for it to exit; its exit status.
    exit_status wait() {
        const unique_fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
        REQUIRE(pidfd);
        pollfd pfd{pidfd.get(), POLLIN, 0};
        REQUIRE(::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(wait_limit).count())) == 1);
        int status = 0;
        REQUIRE(::waitpid(pid_, &status, 0) == pid_);
        pid_ = 0;
        if (WIFSIGNALED(status)) return exit_status{.code = 0, .signal = WTERMSIG(status)};
        return exit_status{.code = WEXITSTATUS(status)};
    }

private:
    pid_t pid_ = 0;
    unique_fd out_;
    std::string buffer_;
};

// Reads lines until every one in `wanted` was seen, in any order, and nothing else.
void read_exactly(fixture_primary& fixture, std::set<std::string> wanted) {
    while (!wanted.empty()) {
        const std::string line = fixture.next_line();
        if (!wanted.erase(line)) FAIL("unexpected line from the fixture primary: " << line);
    }
}

std::string worker_line(unsigned id, std::uint64_t inode) {
    return "worker " + std::to_string(id) + " " + std::to_string(inode);
}

}  // namespace

TEST_CASE("exec mode's default program is the file the primary started from: replaced, a SIGHUP runs the new one") {
    const support::temp_dir dir;
    const std::string program = dir.file("app");
    install_fixture(program);
    const std::uint64_t first = inode_of(program);
    fixture_primary fixture(program);
    CHECK(fixture.next_line() == "primary " + std::to_string(first));
    read_exactly(fixture, {worker_line(1, first), worker_line(2, first)});
    // The primary's own file is now gone from the path: only a path resolved when it started
    // reaches the new one (/proc/self/exe would name the old, deleted file).
    install_fixture(program);
    const std::uint64_t second = inode_of(program);
    REQUIRE(second != first);
    fixture.signal(SIGHUP);
    read_exactly(fixture, {worker_line(3, second), worker_line(4, second), "reload 1 2"});
    fixture.signal(SIGTERM);
    CHECK(fixture.wait().success());
}

// ---- a binary upgrade with thread workers ----

namespace {

// A primary that is no child of the test's (an upgrade's successor, whose predecessor has
// exited): signalled through a pidfd, so never a later process with its pid; SIGKILLed if the
// test ends before it stopped.
class adopted_primary {
public:
    explicit adopted_primary(pid_t pid) : pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0))) {}
    adopted_primary(const adopted_primary&) = delete;
    adopted_primary& operator=(const adopted_primary&) = delete;
    ~adopted_primary() {
        if (pidfd_) (void)::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    }

    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(pidfd_); }
    [[nodiscard]] bool signal(int signo) const {
        return ::syscall(SYS_pidfd_send_signal, pidfd_.get(), signo, nullptr, 0) == 0;
    }
    // Whether it ended within wait_limit (its pidfd turns readable).
    [[nodiscard]] bool ended() const {
        pollfd pfd{pidfd_.get(), POLLIN, 0};
        return ::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(wait_limit).count())) == 1;
    }

private:
    unique_fd pidfd_;
};

// What an upgrade's successor and its predecessor say, read from their shared output: the
// successor's primary and worker lines, then the predecessor's word that the successor is
// ready, in whatever order the two processes write them. Returns the successor's pid.
pid_t read_upgrade(fixture_primary& fixture, std::uint64_t inode) {
    std::set<std::string> wanted{"primary " + std::to_string(inode), worker_line(1, inode), worker_line(2, inode)};
    const std::string started = "cluster: upgrade: primary " + std::to_string(fixture.pid()) + " started ";
    const std::string stops = " is ready; primary " + std::to_string(fixture.pid()) + " stops";
    pid_t successor = 0;
    bool ready = false;
    // Bounded: each line within wait_limit, and no more lines than an upgrade writes, twice.
    for (int lines = 0; lines < 16 && (!wanted.empty() || !ready); ++lines) {
        const std::string line = fixture.next_line();
        if (wanted.erase(line)) continue;
        if (line.starts_with(started)) {
            const auto at = line.rfind(" primary ");
            successor = static_cast<pid_t>(std::stol(line.substr(at + 9)));
        } else if (line.ends_with(stops)) {
            ready = true;
            CHECK(line == "cluster: upgrade: primary " + std::to_string(successor) + stops);
        } else {
            FAIL("unexpected line: " << line);
        }
    }
    CHECK(wanted.empty());
    CHECK(ready);
    return successor;
}

}  // namespace

// docs/deployment.md's binary upgrade, where the workers are threads: the successor is a
// process of its own that starts its own thread workers; the predecessor's leave with it.
TEST_CASE("SIGUSR2 upgrades a primary of thread workers: the new primary's threads start, then the old one exits 0") {
    const support::temp_dir dir;
    const std::string program = dir.file("app");
    install_fixture(program);
    const std::uint64_t inode = inode_of(program);
    fixture_primary fixture(program, {"CLUSTER_TEST_PRIMARY_MODE=thread"}, true);
    read_exactly(fixture, {"primary " + std::to_string(inode), worker_line(1, inode), worker_line(2, inode)});
    fixture.signal(SIGUSR2);
    const pid_t successor = read_upgrade(fixture, inode);
    REQUIRE(successor > 0);
    CHECK(successor != fixture.pid());
    const adopted_primary successor_primary(successor);
    REQUIRE(successor_primary.valid());
    CHECK(fixture.wait().success());
    // The successor serves on alone, and stops as any primary does.
    REQUIRE(successor_primary.signal(SIGTERM));
    CHECK(successor_primary.ended());
}

// ---- what a reload does while the primary stops, or while another reload runs ----

namespace {

task<void> shut_down(primary<proto>& p) { co_await p.shutdown(); }

}  // namespace

TEST_CASE("reload() while the primary is stopping returns ok == false at once") {
    auto o = ignoring_workers(500ms);
    with_primary(o, [](primary<proto>& p) -> task<void> {
        (void)co_await start_workers(p, 1);
        scope stopping;
        stopping.spawn(shut_down(p));
        REQUIRE(p.stopping());
        const auto during = co_await bounded(p.reload());
        CHECK_FALSE(during.ok);
        CHECK(during.replaced == 0);
        CHECK_FALSE(during.what.empty());
        // It did not wait for the stop, which waits for the worker that ignores it.
        REQUIRE(p.worker(1));
        CHECK_FALSE(p.worker(1)->is_dead());
        co_await bounded(joined(stopping));
        const auto after = co_await bounded(p.reload());
        CHECK_FALSE(after.ok);
        CHECK(after.replaced == 0);
    });
}

namespace {

// Sends each waiting worker its go, for as long as it runs.
task<void> keep_going(primary<proto>& p) {
    for (;;) {
        auto here = co_await p.next_message<support::waiting>();
        co_await send_go(p, here.from);
    }
}

// Sends each waiting worker its go, until worker id waits: it gets none.
task<void> go_until_waiting(primary<proto>& p, unsigned id) {
    for (;;) {
        auto here = co_await bounded(p.next_message<support::waiting>());
        if (here.from == id) co_return;
        co_await send_go(p, here.from);
    }
}

task<void> sighup() {
    raise_signal(SIGHUP);
    co_await until_read(SIGHUP);
}

}  // namespace

// With a reload() call queued between them, the SIGHUPs' reload used to be forgotten as
// queued once that call began, so a SIGHUP during it queued a second one.
TEST_CASE("SIGHUPs during a reload queue exactly one more reload, reload() calls among them or not") {
    const bool with_call = GENERATE(false, true);
    INFO((with_call ? "a reload() call queued between the SIGHUPs" : "SIGHUPs only"));
    auto o = support::scripted(start_mode::fork, behaviour::ready_on_go);
    // Each reload waits for the go of its new workers: the signals and calls come meanwhile.
    o.wait_ready = true;
    with_running_primary(o, [&](primary<proto>& p, stop_scene&) {
        const int code = run_primary(p, [&](primary<proto>& p) -> task<void> {
            co_await fork_workers(p, 2);
            (void)co_await let_ready(p, 2);
            co_await sighup();
            co_await go_until_waiting(p, 3);  // the first reload runs
            std::optional<reload_event> call, mine;
            scope reloading;
            if (with_call) reloading.spawn(reload_into(p, call));
            co_await sighup();  // queues one
            unsigned stalled = 3;
            if (with_call) {
                co_await send_go(p, stalled);
                stalled = 5;
                co_await go_until_waiting(p, stalled);  // the call runs, the SIGHUP's is queued
            }
            co_await sighup();  // one is queued already: nothing more
            co_await send_go(p, stalled);
            // Queued after whatever the signals queued: its workers' ids tell how many ran before.
            reloading.spawn(reload_into(p, mine));
            (void)co_await when_any(bounded(joined(reloading)), keep_going(p));
            REQUIRE(mine);
            CHECK(mine->ok);
            CHECK(call.has_value() == with_call);
            // Each reload replaces two workers, with new ids from 3 on: one reload too many
            // would show in the ids of mine, the last.
            const std::size_t reloads_expected = with_call ? 4 : 3;
            CHECK(listed_ids(p) == ids_from(static_cast<unsigned>(1 + 2 * reloads_expected), 2));
            const auto reloads = co_await collect<reload_event>(p, reloads_expected);
            for (const auto& r : reloads) {
                CHECK(r.ok);
                CHECK(r.replaced == 2);
            }
            co_await bounded(p.shutdown());
        });
        CHECK(code == exit_code::ok);
    });
}

namespace {

// Raises SIGTERM once worker id waits for its go, keeping that event for its handle.
task<void> stop_when_waiting(primary<proto>& p, stop_scene& s, unsigned id) {
    s.online.push_back(co_await waiting_of(p, id));
    s.stop_began = steady::now();
    raise_signal(SIGTERM);
}

}  // namespace

// A regression test: main's reload() was cancelled with main, and took that for its new
// worker's ready_timeout running out: it SIGKILLed that worker, and reported it "not ready
// within 30000 ms". The reload now runs on its own, and the stop ends it.
TEST_CASE("a stop signal during a reload, by SIGHUP or from main, stops every worker gracefully, the new one too") {
    const bool by_signal = GENERATE(true, false);
    INFO((by_signal ? "reload by SIGHUP" : "reload() from main"));
    auto o = support::scripted(start_mode::fork, behaviour::ready_on_go);
    // The reload waits for its first new worker's go, which never comes: the stop comes first.
    o.wait_ready = true;
    o.shutdown_timeout = 8s;
    with_running_primary(o, [&](primary<proto>& p, stop_scene& s) {
        const int code = run_primary(p, [&](primary<proto>& p) -> task<void> {
            co_await fork_workers(p, 2);
            s.online = co_await let_ready(p, 2);
            s.side.spawn(stop_when_waiting(p, s, 3));
            if (by_signal) {
                raise_signal(SIGHUP);
                co_await until_cancelled(p);
            }
            (void)co_await p.reload();
            FAIL("reload() returned to a main that the stop cancelled");
        });
        CHECK(code == exit_code::ok);
        CHECK(steady::now() - s.stop_began < o.shutdown_timeout);
        REQUIRE(s.online.size() == 3);
        check_handles(s, true);
    });
}
