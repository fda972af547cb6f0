// Scaling and recycling with real processes and signals: scale() up and down, SIGTTIN and
// SIGTTOU sent to run(), max_messages and max_memory replacing a worker through the reload
// path, resident_memory(), and how recycling, scaling and reload take turns.
//
// In thread mode too (GENERATE over start modes): scaling, SIGTTIN and SIGTTOU (signals to
// the primary, which its thread workers do not take), max_messages with its jitter, and the
// turns recycling, scaling and reload take, since a thread worker is scaled, counted and
// replaced as a process is (a SIGKILL abandons it, as if killed: docs/threads.md). Processes
// only: max_memory and resident_memory(), which read a process's resident set: a thread's is
// the whole process's, which max_memory leaves alone (tested here too).
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include "support/descriptors.hpp"
#include "support/events.hpp"
#include "support/primary.hpp"
#include "support/thread_ends.hpp"
#include "support/waiting.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;

namespace scale_test {

struct ping {
    std::uint64_t seq = 0;
};
BOOST_DESCRIBE_STRUCT(ping, (), (seq))

// Who answered, and how many messages it had received by then, this ping included.
struct pong {
    std::uint64_t seq = 0;
    std::uint32_t worker_id = 0;
    std::uint64_t received = 0;
};
BOOST_DESCRIBE_STRUCT(pong, (), (seq, worker_id, received))

// Allocate this much and touch every page; keep it until exit.
struct hog {
    std::uint64_t mib = 0;
};
BOOST_DESCRIBE_STRUCT(hog, (), (mib))

// A sum read back from the touched pages, so no compiler drops the writes.
struct hogged {
    std::uint64_t checksum = 0;
};
BOOST_DESCRIBE_STRUCT(hogged, (), (checksum))

// Call ready(): with wait_ready, the test decides when a reload's new worker takes over.
struct go {};
BOOST_DESCRIBE_STRUCT(go, (), ())

}  // namespace scale_test

using namespace scale_test;
using scale_proto = protocol<ping, pong, hog, hogged, go>;
using scale_handle = worker_handle<scale_proto>;

namespace {

using support::bounded;
using support::joined;
using support::listed_ids;
using support::no_children;
using support::open_fd_count;

constexpr auto scale_patience = support::wait_limit;
constexpr std::size_t mib = std::size_t{1} << 20;
constexpr std::size_t sample_stride = 4096;  // one byte read back per (small) page

// ---- the workers ----

std::uint64_t touch(std::vector<std::unique_ptr<unsigned char[]>>& held, std::size_t bytes) {
    auto block = std::make_unique_for_overwrite<unsigned char[]>(bytes);
    std::memset(block.get(), 0x5a, bytes);
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < bytes; i += sample_stride) sum += block[i];
    held.push_back(std::move(block));
    return sum;
}

// Answers every message until the primary disconnects it. No Catch here: it runs in the worker.
task<void> serve(worker<scale_proto>& w) {
    support::thread_ends::watch();  // abandoned, a thread worker ends once its link is cut
    std::uint64_t received = 0;
    std::vector<std::unique_ptr<unsigned char[]>> held;
    while (auto m = co_await w.receive()) {
        ++received;
        if (const auto* p = m->get_if<ping>()) {
            const pong answer{p->seq, w.id(), received};
            (void)co_await w.reply(*m, answer);
        } else if (const auto* h = m->get_if<hog>()) {
            const hogged answer{touch(held, h->mib * mib)};
            (void)co_await w.reply(*m, answer);
        } else if (m->is<go>()) {
            (void)co_await w.ready();
        }
    }
}

// ---- waiting, bounded ----

template <class E>
task<E> next(primary<scale_proto>& p) {
    co_return co_await bounded(p.next<E>());
}

// The next event, if one is queued now: a timeout of zero loses to a take that needs no wait.
task<std::optional<event<scale_proto>>> queued_event(primary<scale_proto>& p) {
    auto e = co_await with_timeout(p.next_event(), 0ms);
    if (!e) co_return std::nullopt;
    co_return std::move(*e);
}

// Every event queued now.
task<std::vector<event<scale_proto>>> queued_events(primary<scale_proto>& p) {
    std::vector<event<scale_proto>> out;
    while (auto e = co_await queued_event(p)) out.push_back(std::move(*e));
    co_return out;
}

// Takes events until n workers came online; returns all it took.
task<std::vector<event<scale_proto>>> until_online(primary<scale_proto>& p, std::size_t n) {
    std::vector<event<scale_proto>> seen;
    for (std::size_t online = 0; online < n;) {
        seen.push_back(co_await bounded(p.next_event()));
        online += seen.back().is<online_event>();
    }
    co_return seen;
}

// Takes events through the next E; returns all it took, that one last.
template <class E>
task<std::vector<event<scale_proto>>> through(primary<scale_proto>& p) {
    std::vector<event<scale_proto>> seen;
    do seen.push_back(co_await bounded(p.next_event()));
    while (!seen.back().is<E>());
    co_return seen;
}

// Nothing at all happens for `quiet`: for what must not happen, there is no event to wait on.
task<void> expect_quiet(primary<scale_proto>& p, std::chrono::milliseconds quiet) {
    auto e = co_await with_timeout(p.next_event(), quiet);
    if (e) FAIL("unexpected event of kind " << static_cast<int>(e->kind()) << " about worker " << e->worker_id());
}

// ---- reading what happened ----

// Where in `events` the first event of kind E about worker id is; events.size() if none.
template <class E>
std::size_t position(const std::vector<event<scale_proto>>& events, unsigned id) {
    for (std::size_t i = 0; i < events.size(); ++i)
        if (events[i].is<E>() && events[i].worker_id() == id) return i;
    return events.size();
}

std::set<unsigned> ids_of(const std::vector<fork_event>& forks) {
    std::set<unsigned> out;
    for (const auto& f : forks) out.insert(f.worker_id);
    return out;
}

// The rollout that ended `events`: its reload event says `ok`, `replaced` and max_messages,
// and the one exit among them is worker gone_id's, for `why`.
void check_recycled(const std::vector<event<scale_proto>>& events, bool ok, unsigned replaced, unsigned gone_id,
                    stop_reason why) {
    const auto& done = *events.back().get_if<reload_event>();
    CHECK(done.reason == stop_reason::max_messages);
    CHECK(done.ok == ok);
    CHECK(done.replaced == replaced);
    const auto exits = support::all_of<exit_event>(events);
    REQUIRE(exits.size() == 1);
    CHECK(exits.front().worker_id == gone_id);
    CHECK(exits.front().reason == why);
}

// ---- talking to workers ----

task<result<pong>> request_ping(scale_handle& h, std::uint64_t seq) {
    const ping m{seq};
    co_return co_await h.request<pong>(m, scale_patience);
}

task<pong> ping_ok(scale_handle& h, std::uint64_t seq) {
    auto r = co_await request_ping(h, seq);
    if (!r) FAIL("ping " << seq << " to worker " << h.id() << ": " << r.error().message());
    co_return *r;
}

task<void> tell_ready(scale_handle& h) {
    const go m;
    auto sent = co_await h.send(m);
    if (!sent) FAIL("go to worker " << h.id() << ": " << sent.error().message());
}

// ---- the primary ----

// Options for workers started in `mode`, the rest as the defaults.
primary_options started_as(start_mode mode) {
    primary_options o;
    o.mode = mode;
    return o;
}

// Runs body against a primary of serving workers (see support::with_primary).
template <class Body>
void with_serving_workers(primary_options o, Body&& body) {
    support::with_primary<scale_proto>(std::move(o), serve, std::forward<Body>(body));
}

}  // namespace

TEST_CASE("scale() forks up to n, retires the oldest gracefully down to n, and returns once they exited") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    with_serving_workers(started_as(mode), [](primary<scale_proto>& p) -> task<void> {
        co_await bounded(p.scale(2));
        CHECK(p.target() == 2);
        (void)co_await until_online(p, 2);

        co_await bounded(p.scale(5));
        CHECK(p.target() == 5);
        auto started = co_await until_online(p, 3);
        CHECK(ids_of(support::all_of<fork_event>(started)) == std::set<unsigned>{3, 4, 5});
        CHECK(listed_ids(p) == std::vector<unsigned>{1, 2, 3, 4, 5});

        co_await bounded(p.scale(1));
        CHECK(p.target() == 1);
        for (unsigned id = 1; id <= 4; ++id) {
            INFO("worker " << id);
            REQUIRE(p.worker(id) != nullptr);  // its exit event is not taken yet
            CHECK(p.worker(id)->is_dead());
        }
        CHECK(listed_ids(p) == std::vector<unsigned>{5});
        auto retired = support::all_of<exit_event>(co_await queued_events(p));
        REQUIRE(retired.size() == 4);
        for (const auto& x : retired) {
            INFO("worker " << x.worker_id);
            CHECK(x.worker_id <= 4);
            CHECK(x.reason == stop_reason::scale_down);
            CHECK(x.exited_after_disconnect);
            CHECK(x.status.success());
        }

        co_await bounded(p.scale(0));
        CHECK(p.target() == 0);
        CHECK(p.workers().empty());
        auto last = co_await next<exit_event>(p);
        CHECK(last.worker_id == 5);
        CHECK(last.reason == stop_reason::scale_down);
        CHECK(last.exited_after_disconnect);
    });
}

TEST_CASE("scaling down gives up a slot waiting for its restart before any running worker") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    constexpr auto restart_delay = 750ms;
    auto o = started_as(mode);
    o.restart.initial_delay = restart_delay;
    o.restart.jitter = 0;
    support::thread_ends threads_ended;
    with_serving_workers(o, [&](primary<scale_proto>& p) -> task<void> {
        co_await bounded(p.scale(3));
        (void)co_await until_online(p, 3);

        // The middle one, so that "the oldest" would be another.
        REQUIRE(p.worker(2)->kill(SIGKILL).has_value());
        auto killed = co_await next<exit_event>(p);
        CHECK(killed.worker_id == 2);
        CHECK(killed.status.signal == SIGKILL);
        // An abandoned thread's descriptors are its own until it returns.
        if (mode == start_mode::thread) co_await threads_ended.until(1);
        auto planned = co_await next<restart_scheduled_event>(p);
        CHECK(planned.worker_id == 2);
        CHECK(planned.delay == restart_delay);
        CHECK(p.target() == 3);

        co_await bounded(p.scale(2));
        CHECK(p.target() == 2);
        CHECK(listed_ids(p) == std::vector<unsigned>{1, 3});
        // No worker retired, and the cancelled restart forks nothing when its time comes.
        co_await expect_quiet(p, 2 * restart_delay);
        CHECK(listed_ids(p) == std::vector<unsigned>{1, 3});
        CHECK(p.target() == 2);
    });
}

namespace {

// A signal that changes nothing has no event to wait for, but the primary counts every
// signal it takes, once it has acted on it.
task<void> raise_and_wait_handled(primary<scale_proto>& p, int signo) {
    const auto taken = [signo](const cluster_status& s) {
        const auto it = s.signals.find(io::signal_name(signo));
        return it == s.signals.end() ? std::uint64_t{0} : it->second;
    };
    const auto before = taken(p.status());
    REQUIRE(::kill(::getpid(), signo) == 0);
    (void)co_await support::status_when(p, [&](const cluster_status& s) { return taken(s) != before; });
}

task<unsigned> raise_and_expect_fork(primary<scale_proto>& p) {
    REQUIRE(::kill(::getpid(), SIGTTIN) == 0);
    const unsigned id = (co_await next<fork_event>(p)).worker_id;
    auto up = co_await next<online_event>(p);
    CHECK(up.worker_id == id);
    co_return id;
}

task<void> raise_and_expect_retired(primary<scale_proto>& p, unsigned oldest) {
    REQUIRE(::kill(::getpid(), SIGTTOU) == 0);
    auto gone = co_await next<exit_event>(p);
    CHECK(gone.worker_id == oldest);
    CHECK(gone.reason == stop_reason::scale_down);
    CHECK(gone.exited_after_disconnect);
}

task<void> scale_by_signals(primary<scale_proto>& p) {
    co_await bounded(p.scale(1));
    (void)co_await until_online(p, 1);

    // Bound first: a co_await inside CHECK is also in its unevaluated branch, which g++ runs.
    const unsigned second = co_await raise_and_expect_fork(p);
    CHECK(second == 2);
    CHECK(p.target() == 2);
    const unsigned third = co_await raise_and_expect_fork(p);
    CHECK(third == 3);
    CHECK(p.target() == 3);

    co_await raise_and_expect_retired(p, 1);
    CHECK(p.target() == 2);
    co_await raise_and_expect_retired(p, 2);
    CHECK(p.target() == 1);

    co_await raise_and_wait_handled(p, SIGTTOU);
    // Scaling takes turns: once this scale(1) has run, so has what SIGTTOU started. Had it
    // retired the last worker, this would have forked another.
    co_await bounded(p.scale(1));
    CHECK(listed_ids(p) == std::vector<unsigned>{3});
    CHECK(p.target() == 1);

    // The next thing to happen is SIGTTIN's fork: nothing left over from SIGTTOU.
    REQUIRE(::kill(::getpid(), SIGTTIN) == 0);
    auto e = co_await bounded(p.next_event());
    CHECK(e.is<fork_event>());
    CHECK(e.worker_id() == 4);

    REQUIRE(::kill(::getpid(), SIGTERM) == 0);
}

// SIGTTIN and SIGTTOU stop a process by default: one left pending when a failing test ends
// run() early, and so unblocks them, would freeze the whole test binary.
class ignoring {
public:
    explicit ignoring(std::initializer_list<int> signals) {
        for (int s : signals) {
            struct sigaction ignore {};
            ignore.sa_handler = SIG_IGN;
            sigemptyset(&ignore.sa_mask);
            struct sigaction before {};
            ::sigaction(s, &ignore, &before);
            previous_.emplace_back(s, before);
        }
    }
    ignoring(const ignoring&) = delete;
    ignoring& operator=(const ignoring&) = delete;
    ~ignoring() {
        for (const auto& [s, before] : previous_) ::sigaction(s, &before, nullptr);
    }

private:
    std::vector<std::pair<int, struct sigaction>> previous_;
};

}  // namespace

TEST_CASE("in run(), SIGTTIN adds a worker and SIGTTOU retires the oldest, never the last") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    // Linux keeps a blocked signal pending even if it is ignored: the signalfd still reads it.
    const ignoring job_control{SIGTTIN, SIGTTOU};
    const std::size_t fds = open_fd_count();
    int code = -1;
    {
        io_context ctx;
        primary<scale_proto> p(started_as(mode), serve);
        code = sync_wait(p.run(scale_by_signals));
    }
    CHECK(code == exit_code::ok);
    CHECK(open_fd_count() == fds);
    CHECK(no_children());
}

TEST_CASE("max_messages: the worker that got its 50th message is replaced through the reload path, losing nothing") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = started_as(mode);
    o.max_messages = 50;
    with_serving_workers(o, [](primary<scale_proto>& p) -> task<void> {
        co_await bounded(p.scale(1));
        (void)co_await until_online(p, 1);
        scale_handle& old = *p.worker(1);

        for (std::uint64_t seq = 1; seq < 50; ++seq) {
            CHECK(p.workers().size() == 1);
            auto answer = co_await ping_ok(old, seq);
            CHECK(answer.received == seq);
        }
        // The 50th and 20 more, queued in one turn of the loop: the worker asks to be replaced
        // as it takes the 50th, which the primary reads on a later turn, so all of them are
        // ahead of the disconnect that retires it, and it must answer every one. (Queued after
        // the 50th answer, they raced a thread worker's replacement, online before the loop
        // turned again under load, and came after the disconnect: 1 run in 100.)
        std::vector<task<result<pong>>> burst;
        for (std::uint64_t seq = 50; seq <= 70; ++seq) burst.push_back(request_ping(old, seq));
        auto answers = co_await bounded(when_all(std::move(burst)));
        for (const auto& a : answers) {
            INFO((a.has_value() ? std::string("ok") : a.error().message()));
            REQUIRE(a.has_value());
            CHECK(a->worker_id == 1);
            CHECK(a->received == a->seq);
        }

        auto events = co_await through<reload_event>(p);
        const auto forks = support::all_of<fork_event>(events);
        REQUIRE(forks.size() == 1);
        const unsigned fresh = forks.front().worker_id;
        CHECK(fresh == 2);
        const std::size_t up = position<online_event>(events, fresh);
        const std::size_t left = position<disconnect_event>(events, 1);
        const std::size_t gone = position<exit_event>(events, 1);
        CHECK(up < left);
        CHECK(left < gone);
        REQUIRE(gone < events.size());
        const auto& x = *events[gone].get_if<exit_event>();
        CHECK(x.reason == stop_reason::max_messages);
        CHECK(x.exited_after_disconnect);
        CHECK(x.status.success());
        const auto& done = *events.back().get_if<reload_event>();
        CHECK(done.reason == stop_reason::max_messages);
        CHECK(done.ok);
        CHECK(done.replaced == 1);

        CHECK(listed_ids(p) == std::vector<unsigned>{fresh});
        CHECK(p.target() == 1);
        auto answer = co_await ping_ok(*p.worker(fresh), 1);
        CHECK(answer.worker_id == fresh);
        CHECK(answer.received == 1);
    });
}

namespace {

constexpr std::uint64_t limit = 10;
constexpr std::uint64_t jitter = 10;

// Pings the only worker one message at a time until its replacement starts; returns how many
// it got. A worker's request to be replaced travels ahead of its answer, and a fork-mode
// worker is listed the moment it is forked: so the replacement is listed by the time the
// answer to the message that reached the limit arrives.
task<std::uint64_t> ping_until_replaced(primary<scale_proto>& p, std::uint64_t& seq) {
    REQUIRE(p.workers().size() == 1);
    scale_handle& h = *p.workers().front();
    for (std::uint64_t got = 1;; ++got) {
        auto answer = co_await ping_ok(h, ++seq);
        CHECK(answer.received == got);
        if (p.workers().size() > 1) co_return got;
        if (got > limit + jitter) FAIL("worker " << h.id() << " was not replaced after " << got << " messages");
    }
}

}  // namespace

TEST_CASE("max_messages with jitter: each worker is replaced after between M and M + J messages") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    constexpr std::size_t recycles = 8;
    auto o = started_as(mode);
    o.max_messages = limit;
    o.max_messages_jitter = jitter;
    with_serving_workers(o, [](primary<scale_proto>& p) -> task<void> {
        co_await bounded(p.scale(1));
        (void)co_await until_online(p, 1);
        std::vector<std::uint64_t> limits;
        std::uint64_t seq = 0;
        for (std::size_t i = 0; i < recycles; ++i) {
            const unsigned old = p.workers().front()->id();
            limits.push_back(co_await ping_until_replaced(p, seq));
            auto events = co_await through<reload_event>(p);
            check_recycled(events, true, 1, old, stop_reason::max_messages);
        }
        INFO("messages per worker: " << Catch::Detail::stringify(limits));
        for (auto n : limits) {
            CHECK(n >= limit);
            CHECK(n <= limit + jitter);
        }
        // Eight draws from eleven values, all alike: about once in 20 million runs.
        CHECK(std::set<std::uint64_t>(limits.begin(), limits.end()).size() > 1);
    });
}

namespace {

task<std::size_t> idle_worker_rss(primary<scale_proto>& p) {
    co_await bounded(p.scale(1));
    (void)co_await until_online(p, 1);
    auto rss = resident_memory(p.workers().front()->pid());
    REQUIRE(rss.has_value());
    co_await bounded(p.scale(0));
    (void)co_await next<exit_event>(p);
    co_return *rss;
}

}  // namespace

TEST_CASE("max_memory: a worker above the limit is replaced through the reload path, an idle one is left alone") {
    constexpr std::uint64_t allocated_mib = 64;
    constexpr std::size_t headroom = 32 * mib;
    constexpr auto check_every = 50ms;
    with_serving_workers(primary_options{}, [&](primary<scale_proto>& p) -> task<void> {
        // Measured here: what a forked worker starts with depends on the build (ASan's is larger).
        const std::size_t baseline = co_await idle_worker_rss(p);
        auto limited = p.settings();
        limited.max_memory = baseline + headroom;
        limited.memory_check_interval = check_every;
        p.setup(limited);
        (void)co_await next<setup_event>(p);

        co_await bounded(p.scale(2));
        (void)co_await until_online(p, 2);
        const auto ids = listed_ids(p);
        REQUIRE(ids.size() == 2);
        const unsigned big = ids[0], idle = ids[1];

        const hog allocate{allocated_mib};
        auto touched = co_await p.worker(big)->request<hogged>(allocate, scale_patience);
        REQUIRE(touched.has_value());
        CHECK(touched->checksum == 0x5a * (allocated_mib * mib / sample_stride));

        auto events = co_await through<reload_event>(p);
        const auto forks = support::all_of<fork_event>(events);
        REQUIRE(forks.size() == 1);
        const unsigned fresh = forks.front().worker_id;
        const std::size_t up = position<online_event>(events, fresh);
        const std::size_t gone = position<exit_event>(events, big);
        CHECK(up < gone);
        REQUIRE(gone < events.size());
        const auto& x = *events[gone].get_if<exit_event>();
        CHECK(x.reason == stop_reason::max_memory);
        CHECK(x.exited_after_disconnect);
        CHECK(support::all_of<exit_event>(events).size() == 1);
        const auto& done = *events.back().get_if<reload_event>();
        CHECK(done.reason == stop_reason::max_memory);
        CHECK(done.ok);
        CHECK(done.replaced == 1);

        // Checked every 50 ms all along, and again now: still under the limit, still running.
        co_await expect_quiet(p, 6 * check_every);
        CHECK(listed_ids(p) == std::vector<unsigned>{idle, fresh});
        CHECK(p.target() == 2);
    });
}

namespace {

constexpr auto thread_memory_checks = 50ms;

}  // namespace

// A regression test: a thread worker's resident set was read as the process's, above any
// limit below the process's, and each thread worker was replaced at every check, without end.
TEST_CASE("max_memory leaves thread workers alone: their resident set is the whole process's") {
    auto o = started_as(start_mode::thread);
    o.max_memory = 1;  // any process is above it
    o.memory_check_interval = thread_memory_checks;
    with_serving_workers(o, [](primary<scale_proto>& p) -> task<void> {
        co_await bounded(p.scale(2));
        (void)co_await until_online(p, 2);
        // Six checks' time: nothing is replaced.
        co_await expect_quiet(p, 6 * thread_memory_checks);
        CHECK(listed_ids(p) == std::vector<unsigned>{1, 2});
        CHECK(p.target() == 2);
    });
}

namespace {

std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

// Never a process id: ids run below pid_max.
pid_t no_such_pid() {
    long max = 0;
    std::ifstream("/proc/sys/kernel/pid_max") >> max;
    REQUIRE(max > 0);
    return static_cast<pid_t>(max);
}

}  // namespace

TEST_CASE("resident_memory(): this process's resident set, growing as memory is touched, and ENOENT for no process") {
    auto before = resident_memory(::getpid());
    REQUIRE(before.has_value());
    CHECK(*before > 0);
    CHECK(*before % page_size() == 0);
    CHECK(*before < static_cast<std::size_t>(::sysconf(_SC_PHYS_PAGES)) * page_size());

    constexpr std::size_t size = 64 * mib;
    void* block = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(block != MAP_FAILED);
    std::memset(block, 0x5a, size);
    auto after = resident_memory(::getpid());
    ::munmap(block, size);
    REQUIRE(after.has_value());
    CHECK(*after >= *before + size * 3 / 4);

    auto none = resident_memory(no_such_pid());
    REQUIRE_FALSE(none.has_value());
    CHECK(none.error() == std::errc::no_such_file_or_directory);
}

namespace {

task<void> reload_into(primary<scale_proto>& p, reload_event& out) { out = co_await p.reload(); }

task<void> scale_to(primary<scale_proto>& p, std::size_t n) { co_await p.scale(n); }

}  // namespace

TEST_CASE("a worker reaching max_messages during a reload is replaced once, by the reload") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = started_as(mode);
    o.max_messages = 50;
    o.wait_ready = true;  // the test decides when each of the reload's new workers is ready
    with_serving_workers(o, [](primary<scale_proto>& p) -> task<void> {
        co_await bounded(p.scale(2));
        (void)co_await until_online(p, 2);
        scale_handle& second = *p.worker(2);
        for (std::uint64_t seq = 1; seq < 50; ++seq) (void)co_await ping_ok(second, seq);

        reload_event reloaded;
        scope reloading;
        reloading.spawn(reload_into(p, reloaded));
        const unsigned first_new = (co_await next<fork_event>(p)).worker_id;
        CHECK(first_new == 3);

        // Its 50th: it asks to be replaced while the reload waits for worker 3. The recycling
        // must wait its turn; meanwhile nothing starts for it.
        auto answer = co_await ping_ok(second, 50);
        CHECK(answer.received == 50);
        CHECK(listed_ids(p) == std::vector<unsigned>{1, 2, 3});

        co_await tell_ready(*p.worker(first_new));
        const unsigned second_new = (co_await next<fork_event>(p)).worker_id;
        CHECK(second_new == 4);
        co_await tell_ready(*p.worker(second_new));
        co_await bounded(joined(reloading));
        CHECK(reloaded.reason == stop_reason::reload);
        CHECK(reloaded.ok);
        CHECK(reloaded.replaced == 2);

        // Taking turns: once this scale(2) has run, the recycling that waited has too.
        co_await bounded(p.scale(2));
        CHECK(listed_ids(p) == std::vector<unsigned>{3, 4});
        CHECK(p.target() == 2);
        auto events = co_await queued_events(p);
        CHECK(support::all_of<fork_event>(events).empty());
        const auto exits = support::all_of<exit_event>(events);
        REQUIRE(exits.size() == 2);
        for (const auto& x : exits) {
            INFO("worker " << x.worker_id);
            CHECK(x.worker_id <= 2);
            CHECK(x.reason == stop_reason::reload);
        }
        const auto reloads = support::all_of<reload_event>(events);
        REQUIRE(reloads.size() == 1);
        CHECK(reloads.front().reason == stop_reason::reload);
    });
}

TEST_CASE("scale() waits for a recycling under way, then retires the worker that replaced the recycled one") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = started_as(mode);
    o.max_messages = 5;
    o.wait_ready = true;  // the test decides when the replacement is ready
    with_serving_workers(o, [](primary<scale_proto>& p) -> task<void> {
        co_await bounded(p.scale(1));
        (void)co_await until_online(p, 1);
        scale_handle& old = *p.worker(1);
        for (std::uint64_t seq = 1; seq <= 5; ++seq) (void)co_await ping_ok(old, seq);
        const unsigned fresh = (co_await next<fork_event>(p)).worker_id;

        scope scaling;
        scaling.spawn(scale_to(p, 0));
        // Its turn comes after the recycling's: nothing has changed yet.
        CHECK(p.target() == 1);
        CHECK(listed_ids(p) == std::vector<unsigned>{1, fresh});

        co_await tell_ready(*p.worker(fresh));
        co_await bounded(joined(scaling));
        CHECK(p.target() == 0);
        CHECK(p.workers().empty());
        auto events = co_await queued_events(p);
        CHECK(support::all_of<fork_event>(events).empty());
        const auto exits = support::all_of<exit_event>(events);
        REQUIRE(exits.size() == 2);
        CHECK(exits[0].worker_id == 1);
        CHECK(exits[0].reason == stop_reason::max_messages);
        CHECK(exits[1].worker_id == fresh);
        CHECK(exits[1].reason == stop_reason::scale_down);
        const auto reloads = support::all_of<reload_event>(events);
        REQUIRE(reloads.size() == 1);
        CHECK(reloads.front().reason == stop_reason::max_messages);
        CHECK(reloads.front().ok);
        CHECK(reloads.front().replaced == 1);
    });
}

TEST_CASE("max_messages: a worker whose replacement was not ready in time asks again after as many messages more") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    auto o = started_as(mode);
    o.max_messages = 5;
    o.wait_ready = true;  // the first replacement never calls ready()
    o.ready_timeout = 300ms;
    support::thread_ends threads_ended;
    with_serving_workers(o, [&](primary<scale_proto>& p) -> task<void> {
        co_await bounded(p.scale(1));
        (void)co_await until_online(p, 1);
        scale_handle& old = *p.worker(1);
        for (std::uint64_t seq = 1; seq <= 5; ++seq) (void)co_await ping_ok(old, seq);

        auto failed = co_await through<reload_event>(p);
        check_recycled(failed, false, 0, 2, stop_reason::not_ready);
        // Killed at ready_timeout, a thread is abandoned: its descriptors are its own until it returns.
        if (mode == start_mode::thread) co_await threads_ended.until(1);
        CHECK(listed_ids(p) == std::vector<unsigned>{1});

        // Asked again after five more, not before.
        for (std::uint64_t seq = 6; seq <= 10; ++seq) {
            CHECK(listed_ids(p) == std::vector<unsigned>{1});
            auto answer = co_await ping_ok(old, seq);
            CHECK(answer.worker_id == 1);
        }
        const unsigned second_try = (co_await next<fork_event>(p)).worker_id;
        CHECK(second_try == 3);
        co_await tell_ready(*p.worker(second_try));
        auto replaced = co_await through<reload_event>(p);
        check_recycled(replaced, true, 1, 1, stop_reason::max_messages);
        CHECK(listed_ids(p) == std::vector<unsigned>{second_try});
    });
}
