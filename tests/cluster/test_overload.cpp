// overload_counts and the bounds behind it, attacked with real processes: a primary and
// workers at their descriptor limits (prlimit-lowered) under a burst of held connections,
// a worker that claims four billion closes or floods fds, events and messages nobody
// takes, and a worker that dies of exhaustion, which the crash-loop cap does not count.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/connections.hpp"
#include "support/descriptors.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::proto;

namespace {

using steady = std::chrono::steady_clock;

// ---- the attacking client: a process of its own, with plain blocking sockets ----

struct attack_result {
    std::int32_t held = 0;             // connections it opened and held
    std::int32_t answered_during = 0;  // of the requests made while holding them
    std::int32_t asked_during = 0;
    std::int32_t recovery_ms = -1;  // from letting go until a request was answered; -1: never (10 s)
};

void set_fd_limit(pid_t pid, rlim_t limit) {
    rlimit now{};
    REQUIRE(::prlimit(pid, RLIMIT_NOFILE, nullptr, &now) == 0);
    now.rlim_cur = limit;
    REQUIRE(::prlimit(pid, RLIMIT_NOFILE, &now, nullptr) == 0);
}

int connect_to(std::uint16_t port, bool blocking, std::chrono::milliseconds limit) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
    if (s < 0) return -1;
    const timeval tv{static_cast<time_t>(limit.count() / 1000), static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
        ::close(s);
        return -1;
    }
    return s;
}

// One request of the line protocol on a new connection, answered within `limit`.
bool answered(std::uint16_t port, std::chrono::milliseconds limit) {
    const int s = connect_to(port, true, limit);
    if (s < 0) return false;
    const char line[] = "c probe\n";
    bool ok = ::send(s, line, sizeof line - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof line - 1);
    std::string got;
    char buf[64];
    while (ok && got.find('\n') == std::string::npos) {
        const ssize_t n = ::recv(s, buf, sizeof buf, 0);
        if (n <= 0)
            ok = false;
        else
            got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(s);
    return ok && got.ends_with(" probe\n");
}

// Opens `hold` connections and keeps them while it asks 10 times, lets go (and thaws
// `frozen`, a worker stopped for the attack), and measures how long until the service
// answers again. Every loop is bounded in count and time.
attack_result attack(std::uint16_t port, int hold, pid_t frozen) {
    set_fd_limit(0, static_cast<rlim_t>(hold) + 256);
    attack_result r;
    std::vector<int> held;
    for (int i = 0; i < hold; ++i) {
        const int s = connect_to(port, false, 1s);
        if (s >= 0) held.push_back(s);
    }
    r.held = static_cast<std::int32_t>(held.size());
    for (; r.asked_during < 10; ++r.asked_during) r.answered_during += answered(port, 200ms) ? 1 : 0;
    for (int s : held) ::close(s);
    if (frozen > 0) ::kill(frozen, SIGCONT);
    const auto released = steady::now();
    while (steady::now() - released < 10s) {
        if (answered(port, 500ms)) {
            r.recovery_ms = static_cast<std::int32_t>(
                std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - released).count());
            break;
        }
    }
    return r;
}

// Runs attack() in a child process; its result, once it is done.
task<attack_result> attack_from_child(std::uint16_t port, int hold, pid_t frozen) {
    auto [from_child, to_parent] = support::make_pipe();
    auto child = child_process::fork().value();
    if (child.is_child()) {
        from_child.reset();
        const attack_result r = attack(port, hold, frozen);
        (void)!::write(to_parent.get(), &r, sizeof r);
        ::_exit(0);
    }
    to_parent.reset();
    attack_result r;
    auto got = co_await support::bounded(io::read_exact(from_child.get(), std::as_writable_bytes(std::span(&r, 1))),
                                         60s, "the attacking client");
    REQUIRE(got);
    (void)co_await child.wait();
    co_return r;
}

// Where the descriptors run out.
enum class exhausted { primary, workers };

struct exhaustion_case {
    schedule how;
    exhausted where;
    rlim_t limit;
    int hold;
};

void run_exhaustion(const exhaustion_case& c) {
    INFO(to_string(c.how) << ", " << (c.where == exhausted::primary ? "primary" : "workers") << " at " << c.limit
                          << " descriptors, " << c.hold << " connections held");
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
    auto o = support::options_for(c.how);
    o.restart.mode = restart_mode::permanent;
    support::with_primary(o, [&](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 2);
        // The primary runs short when a worker stops answering handoffs (it keeps each
        // connection until answered): one is frozen for the attack.
        pid_t frozen = 0;
        if (c.where == exhausted::primary) {
            frozen = p.workers().front()->pid();
            REQUIRE(::kill(frozen, SIGSTOP) == 0);
            set_fd_limit(0, c.limit);
        } else {
            for (auto* h : p.workers()) set_fd_limit(h->pid(), c.limit);
        }
        const auto r = co_await attack_from_child(at.port, c.hold, frozen);
        set_fd_limit(0, saved.rlim_cur);
        const auto counts = p.overload();
        std::uint64_t refused = 0;  // by the workers, for handoffs that came without their socket
        for (auto* h : p.workers()) {
            auto answer = co_await support::bounded(h->request<support::pong>(support::ping{1}));
            REQUIRE(answer.has_value());
            refused += answer->refused;
        }
        INFO("held " << r.held << ", answered " << r.answered_during << "/" << r.asked_during
                     << " meanwhile, back after " << r.recovery_ms << " ms; shed " << counts.connections_shed
                     << ", accept failures " << counts.accept_failures << "; workers refused " << refused);
        CHECK(r.held == c.hold);
        // The pressure was real, and then it was gone within 2 s. At 1024 the primary need
        // not run out at all: the frozen worker pins no more than its unanswered handoffs. At
        // 64 it runs out only if the other worker answers slower than the attack connects,
        // which a quiet fast machine may never let happen (seen on the CI kind, before and
        // after issue 19): then there was nothing to shed, and that is said, not failed.
        if (c.where == exhausted::workers)
            CHECK(refused > 0);
        else if (c.limit <= 64 && counts.connections_shed + counts.accept_failures == 0)
            WARN("the primary never ran short at 64 descriptors: the other worker kept up with the attack");
        CHECK(r.recovery_ms >= 0);
        CHECK(r.recovery_ms < 2000);
        if (c.where == exhausted::primary) CHECK(r.answered_during > 0);
        // Nobody died of it: the same two workers serve.
        CHECK(p.workers().size() == 2);
        CHECK_FALSE(p.gave_up());
        for (auto* h : p.workers()) CHECK(h->id() <= 2);
    });
    ::setrlimit(RLIMIT_NOFILE, &saved);
}

}  // namespace

TEST_CASE("a primary at its descriptor limit sheds what it cannot hand on, and is back within 2 s") {
    for (schedule how : {schedule::round_robin, schedule::sticky, schedule::least_connections})
        run_exhaustion({how, exhausted::primary, 64, 300});
    run_exhaustion({schedule::round_robin, exhausted::primary, 1024, 3000});
}

TEST_CASE("workers at their descriptor limit refuse what they cannot receive, keep their link, and recover") {
    for (schedule how : {schedule::round_robin, schedule::sticky, schedule::least_connections})
        run_exhaustion({how, exhausted::workers, 64, 300});
    run_exhaustion({schedule::round_robin, exhausted::workers, 1024, 3000});
}

TEST_CASE("a worker claiming four billion closed connections is cut off at once") {
    auto o = support::options_for(schedule::round_robin);
    o.env[support::behaviour_env] = support::behaviour::huge_count;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto started = steady::now();
        (void)co_await support::fork_worker(p);
        auto gone = co_await support::bounded(p.next<disconnect_event>());
        const auto took = steady::now() - started;
        CHECK(gone.error == make_error_code(errc::invalid_value));
        // The claim is checked, not counted down: no work proportional to the number.
        CHECK(took < 2s);
    });
}

TEST_CASE("a worker flooding unannounced fds is cut off, and the primary keeps none of them") {
    auto o = support::scripted(start_mode::fork, support::behaviour::fd_flood);
    o.restart.mode = restart_mode::temporary;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto before = support::open_fd_count();
        (void)co_await support::fork_worker(p);
        auto gone = co_await support::bounded(p.next<disconnect_event>());
        const auto during = support::open_fd_count();
        CHECK(gone.error == make_error_code(errc::stray_fd));
        (void)co_await support::bounded(p.next<exit_event>());
        const auto after = support::open_fd_count();
        INFO("descriptors: " << before << " before, " << during << " at the cut-off, " << after << " after");
        // During: the worker's link and pidfd at most; none of its 20,000 fds.
        CHECK(during <= before + 4);
        CHECK(after <= before);
    });
}

TEST_CASE("events nobody takes are bounded: the oldest messages are dropped and counted") {
    auto o = support::scripted(start_mode::fork, support::behaviour::flood_messages);
    o.restart.mode = restart_mode::temporary;
    o.max_queued_bytes = 32u << 20;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const std::size_t before = support::own_rss();
        (void)co_await support::fork_worker(p);
        // As the README's loop does: only exits are awaited; 640 MiB of notes come meanwhile.
        (void)co_await support::bounded(p.next<exit_event>(), 60s, "the flooding worker's exit");
        const std::size_t after = support::own_rss();
        INFO("RSS " << (before >> 20) << " MiB before, " << (after >> 20) << " MiB after");
        CHECK(after < before + (160u << 20));
        CHECK(p.overload().events_dropped >= static_cast<std::uint64_t>(support::flood_count - 2));
        // The newest stays: the hello sent last.
        auto last = co_await support::bounded(p.next_message<support::hello>());
        CHECK(last.value.worker_id != 0);
    });
}

TEST_CASE("messages a worker does not take are bounded: its inbox drops the oldest and counts them") {
    auto o = support::scripted(start_mode::fork, support::behaviour::pings_only);
    o.restart.mode = restart_mode::temporary;
    o.max_queued_bytes = 16u << 20;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        auto& w = co_await support::fork_worker(p);
        (void)co_await support::bounded(p.next<online_event>());
        const support::command big{std::string(8u << 20, 'b')};
        for (int i = 0; i < 40; ++i) {
            auto sent = co_await w.send(big);
            REQUIRE(sent.has_value());
        }
        auto answer = co_await support::bounded(w.request<support::pong>(support::ping{1}, 10s));
        REQUIRE(answer.has_value());
        INFO("worker RSS " << (answer->rss >> 20) << " MiB, dropped " << answer->dropped);
        CHECK(answer->rss < (128u << 20));
        CHECK(answer->dropped >= 30);
    });
}

TEST_CASE("a worker that runs out of descriptors is replaced, and not counted toward the crash-loop cap") {
    auto o = support::scripted(start_mode::fork, support::behaviour::out_of_fds);
    o.restart.mode = restart_mode::permanent;
    o.restart.max_restarts = 2;
    o.restart.initial_delay = 1ms;
    o.restart.max_delay = 5ms;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        (void)co_await support::fork_worker(p);
        for (int i = 0; i < 6; ++i) {
            auto e = co_await support::bounded(p.next<exit_event>());
            CHECK(e.out_of_resources());
            CHECK(e.status.code == exit_code::out_of_resources);
        }
        CHECK_FALSE(p.gave_up());
    });
}
