// No connection is lost on the way to a worker, with real processes (fork mode) and real
// loopback clients: a worker at max_connections, or one that closes its listener, leaves,
// or dies before it took what it was handed, passes it on; a connection nobody can take
// waits in the primary; a client load runs through a rolling reload and a graceful stop
// with no failed request; a worker killed mid-request loses only its own; and neither the
// primary nor a sibling keeps a copy of a connection open, or leaks one.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/connections.hpp"
#include "support/descriptors.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::proto;

namespace {

using handle = worker_handle<proto>;
using steady = std::chrono::steady_clock;

// Forks a worker that first says how many connections on `port` it inherited: must be none.
task<void> fork_inheriting_none(primary<proto>& p, std::uint16_t port) {
    const auto counting = support::with_env(support::setting::inherited_port, std::to_string(port));
    (void)co_await support::fork_worker(p, counting);
    const auto said = co_await support::note_starting(p, "inherited ");
    CHECK(said.text == "inherited 0");
}

// Every other request in `asked`, from `first` on, is answered by `worker_id`.
task<void> answered_by(std::vector<tcp_stream>& asked, std::size_t first, unsigned worker_id) {
    for (std::size_t i = first; i < asked.size(); i += 2) {
        const unsigned id = co_await support::bounded(support::answer_of(asked[i], std::to_string(i)));
        CHECK(id == worker_id);
    }
}

// A serving worker and a lazy one, which round robin alternates between, and n requests on
// new connections. Once the serving worker's (the even ones) are answered, the odd ones
// were handed to the lazy worker before them, which has not taken them.
struct odd_ones_held {
    support::listen_result at;    // the serving worker
    support::listen_result idle;  // the lazy one
    std::vector<tcp_stream> asked;
};

task<odd_ones_held> hold_odd_ones(primary<proto>& p, int n) {
    odd_ones_held h;
    h.at = co_await support::start_listening(p, 1);
    const auto lazy = support::with_env(support::behaviour_env, support::behaviour::lazy_lines);
    h.idle = co_await support::start_listening(p, 1, lazy);
    for (int i = 0; i < n; ++i)
        h.asked.push_back(co_await support::bounded(support::ask_later(where(h.at), 'c', std::to_string(i))));
    co_await answered_by(h.asked, 0, h.at.worker_id);
    co_return std::move(h);
}

// True if nothing comes on s for `d`: the request is still waiting somewhere.
// Tells worker id to close its listener (a lazy worker then serves what it was handed).
task<void> close_listener_of(primary<proto>& p, unsigned id) {
    const support::command close{"close_listener"};
    auto sent = co_await support::worker_of(p, id).send(close);
    REQUIRE(sent.has_value());
}

task<bool> still_unanswered(tcp_stream& s, std::chrono::milliseconds d) {
    std::array<char, 16> buf{};
    auto n = co_await s.read_some(std::span(buf)).with_timeout(d);
    co_return !n && n.error() == std::errc::timed_out;
}

}  // namespace

TEST_CASE("a connection refused at max_connections goes to another worker") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        const auto one = support::with_env(support::setting::max_connections, "1");
        const auto at = co_await support::start_listening(p, 1, one);
        const unsigned limited = at.worker_id;
        auto first = co_await support::bounded(support::hold_one(where(at)));
        CHECK(first.worker_id == limited);
        (void)co_await support::start_listening(p, 1);
        // Round robin offers every other one to the full worker first: it says no, and the
        // other worker serves it.
        std::vector<support::held> more;
        for (int i = 0; i < 6; ++i) {
            auto h = co_await support::bounded(support::hold_one(where(at), std::to_string(i)));
            CHECK(h.worker_id != limited);
            more.push_back(std::move(h));
        }
        const auto pongs = co_await support::bounded(support::ping_all(p));
        for (const auto& pg : pongs) CHECK(pg.accepted == (pg.worker_id == limited ? 1u : 6u));
    });
}

TEST_CASE("with every worker at max_connections, a connection waits in the primary until one closes") {
    auto o = support::options_for(schedule::round_robin);
    o.env[support::setting::max_connections] = "1";
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 2);
        auto a = co_await support::bounded(support::hold_one(where(at), "a"));
        auto b = co_await support::bounded(support::hold_one(where(at), "b"));
        CHECK(a.worker_id != b.worker_id);
        auto waiting = co_await support::bounded(support::ask_later(where(at), 'c', "waiting"));
        const bool unanswered = co_await still_unanswered(waiting, 150ms);
        CHECK(unanswered);
        support::hang_up(b.stream);
        const unsigned id = co_await support::bounded(support::answer_of(waiting, "waiting"));
        CHECK(id == b.worker_id);
        // a's worker is still full, and a still served.
        auto again = co_await support::request(a.stream, 'k', "a2");
        CHECK(again.complete);
        CHECK(again.worker_id == a.worker_id);
    });
}

TEST_CASE("a connection made while no worker listens waits in the primary, and the next worker to listen serves it") {
    auto o = support::options_for(schedule::round_robin);
    o.restart.mode = restart_mode::permanent;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 1);
        const unsigned first = at.worker_id;
        REQUIRE(support::worker_of(p, first).kill(SIGKILL).has_value());
        for (;;) {
            const auto e = co_await support::bounded(p.next<exit_event>());
            if (e.worker_id == first) break;
        }
        // Its replacement is on its way (after the restart delay): these wait for it.
        std::vector<tcp_stream> waiting;
        for (int i = 0; i < 3; ++i)
            waiting.push_back(co_await support::bounded(support::ask_later(where(at), 'c', std::to_string(i))));
        const auto next = co_await support::listening(p);
        for (int i = 0; i < 3; ++i) {
            const unsigned id =
                co_await support::bounded(support::answer_of(waiting[static_cast<std::size_t>(i)], std::to_string(i)));
            CHECK(id == next.worker_id);
        }
    });
}

TEST_CASE("listener.close() gives back the connections handed to it and not taken: another worker serves them") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        auto held = co_await hold_odd_ones(p, 6);
        const bool unanswered = co_await still_unanswered(held.asked[1], 100ms);
        CHECK(unanswered);
        co_await close_listener_of(p, held.idle.worker_id);
        (void)co_await support::note_starting(p, "listener closed");
        co_await answered_by(held.asked, 1, held.at.worker_id);
        const auto pongs = co_await support::bounded(support::ping_all(p));
        for (const auto& pg : pongs) CHECK(pg.accepted == (pg.worker_id == held.at.worker_id ? 6u : 0u));
    });
}

TEST_CASE("a disconnected worker's accept() gives the connections handed to it, then listener_closed") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        auto held = co_await hold_odd_ones(p, 7);
        // Disconnected, the lazy worker accepts at last: what it was handed, then listener_closed.
        auto left = co_await support::bounded(support::worker_of(p, held.idle.worker_id).disconnect());
        CHECK(left.has_value());
        co_await answered_by(held.asked, 1, held.idle.worker_id);
        const auto ended = co_await support::note_starting(p, "accept ended");
        CHECK(ended.text == "accept ended: " + make_error_code(errc::listener_closed).message());
        const auto e = co_await support::bounded(p.next<exit_event>());
        CHECK(e.worker_id == held.idle.worker_id);
        CHECK(e.status.success());
    });
}

TEST_CASE("a worker killed before it took its connections: the primary hands them to another") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        auto held = co_await hold_odd_ones(p, 6);
        REQUIRE(support::worker_of(p, held.idle.worker_id).kill(SIGKILL).has_value());
        co_await answered_by(held.asked, 1, held.at.worker_id);
    });
}

TEST_CASE("a worker SIGKILLed mid-request loses only its own requests, and the cluster keeps serving") {
    auto o = support::options_for(schedule::round_robin);
    o.restart.mode = restart_mode::permanent;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 3);
        // One kept-alive connection at each worker.
        std::map<unsigned, support::held> kept;
        for (int i = 0; i < 3; ++i) {
            auto h = co_await support::bounded(support::hold_one(where(at)));
            const unsigned id = h.worker_id;
            kept.emplace(id, std::move(h));
        }
        REQUIRE(kept.size() == 3);
        // A slow request: its worker holds it, and is killed while it does.
        auto slow = co_await support::bounded(support::ask_later(where(at), 's', "slow"));
        const auto holding = co_await support::note_starting(p, "holding slow");
        const unsigned victim = holding.worker_id;
        REQUIRE(support::worker_of(p, victim).kill(SIGKILL).has_value());
        // The slow request is lost: the connection ends without an answer, at once.
        const bool ended = co_await support::closed_by_peer(slow, 5000ms);
        CHECK(ended);
        for (;;) {
            const auto e = co_await support::bounded(p.next<exit_event>());
            if (e.worker_id == victim) break;
        }
        // The others' connections are untouched.
        for (auto& [id, h] : kept) {
            if (id == victim) continue;
            auto a = co_await support::request(h.stream, 'k', "still");
            INFO("worker " << id << ": " << a.error.message());
            CHECK(a.complete);
            CHECK(a.worker_id == id);
        }
        // New connections are served meanwhile, and by the replacement once it listens.
        std::set<unsigned> during;
        for (int i = 0; i < 4; ++i) during.insert(co_await support::bounded(support::served_by(where(at))));
        CHECK_FALSE(during.contains(victim));
        const auto next = co_await support::listening(p);
        std::set<unsigned> after;
        for (int i = 0; i < 6; ++i) after.insert(co_await support::bounded(support::served_by(where(at))));
        CHECK(after.contains(next.worker_id));
        CHECK(after.size() == 3);
    });
}

TEST_CASE("a worker forked while a connection is in flight to another keeps no copy: the client sees its close") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        auto held = co_await hold_odd_ones(p, 3);
        const auto& at = held.at;
        auto& asked = held.asked;
        // 1 is in flight to the lazy worker: the primary holds a copy until it is taken. A
        // worker forked now must not keep that copy.
        co_await fork_inheriting_none(p, at.port);
        const auto late = co_await support::listening(p);
        co_await close_listener_of(p, held.idle.worker_id);
        const unsigned id = co_await support::bounded(support::answer_of(asked[1], "1"));
        CHECK((id == at.worker_id || id == late.worker_id));
        // Its worker closed it after answering: nobody else holds it open.
        const bool closed = co_await support::closed_by_peer(asked[1], 2000ms);
        CHECK(closed);
        // And every connection a worker closes reaches its client as a close.
        for (int i = 0; i < 8; ++i) {
            auto s = co_await support::bounded(support::ask_later(where(at), 'c', "again"));
            (void)co_await support::bounded(support::answer_of(s, "again"));
            const bool done = co_await support::closed_by_peer(s, 2000ms);
            CHECK(done);
        }
    });
}

TEST_CASE("a worker forked just as the primary passes a connection on keeps no copy: the client sees its close") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        auto held = co_await hold_odd_ones(p, 3);
        const auto& at = held.at;
        auto& asked = held.asked;
        // 1 is in flight to the lazy worker. Closing its listener gives it back, and in the same
        // frames the worker says so: the primary offers 1 to the serving worker (a copy of it
        // queued in that worker's channel until the loop sends it) and wakes this task, which
        // forks at once. The waits are not bounded here, as a bound's timer would cost a trip
        // through the loop first (the whole body is bounded).
        co_await close_listener_of(p, held.idle.worker_id);
        for (;;) {
            auto m = co_await p.next_message<support::note>();
            if (m.value.text == "listener closed") break;
        }
        const auto counting = support::with_env(support::setting::inherited_port, std::to_string(at.port));
        auto forked = co_await p.try_fork(counting);
        REQUIRE(forked.has_value());
        const auto said = co_await support::note_starting(p, "inherited ");
        CHECK(said.text == "inherited 0");
        const unsigned id = co_await support::bounded(support::answer_of(asked[1], "1"));
        CHECK(id == at.worker_id);
        // Its worker closed it after answering: nobody else holds it open.
        const bool closed = co_await support::closed_by_peer(asked[1], 2000ms);
        CHECK(closed);
    });
}

namespace {

// Connections one after another until `stop`: the primary is accepting at any moment.
task<void> steady_load(endpoint to, const bool& stop, std::size_t& served) {
    while (!stop) {
        (void)co_await support::served_by(to, "load");
        ++served;
    }
}

}  // namespace

// The kernel creates an accepted connection's fd before the primary sees its completion;
// the primary must not fork in between, or the worker keeps a copy nobody knows of.
TEST_CASE("workers forked while the primary accepts a stream of connections inherit none of them") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 1);
        bool stop = false;
        std::size_t served = 0;
        scope load;
        for (int i = 0; i < 4; ++i) load.spawn(steady_load(where(at), stop, served));
        for (int i = 0; i < 12; ++i) {
            co_await fork_inheriting_none(p, at.port);
            (void)co_await support::listening(p);
        }
        stop = true;
        co_await support::bounded(support::joined(load));
        CHECK(served > 0);
    });
}

namespace {

task<void> many_connections(endpoint to, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) (void)co_await support::served_by(to, std::to_string(i));
}

}  // namespace

TEST_CASE("the primary leaks no descriptor after many connections") {
    const schedule how = GENERATE(from_range(std::begin(support::every_schedule), std::end(support::every_schedule)));
    INFO(to_string(how));
    support::with_primary(support::options_for(how), [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 3);
        (void)co_await support::bounded(support::ping_all(p));
        const std::size_t before = support::open_fd_count();
        scope clients;
        for (int c = 0; c < 4; ++c) clients.spawn(many_connections(where(at), 50));
        co_await support::bounded(support::joined(clients));
        // Every handoff's answer has reached the primary once the pongs have.
        const auto pongs = co_await support::bounded(support::ping_all(p));
        std::uint64_t accepted = 0;
        for (const auto& pg : pongs) accepted += pg.accepted;
        CHECK(accepted == 200);
        CHECK(support::open_fd_count() == before);
    });
}

// ---- a client load through a rolling reload and a graceful stop ----

namespace {

// What the test's clients saw. A failed request is one whose connection was accepted (the
// connect succeeded) and that got no whole answer; on a kept-alive connection, a request
// that got not a byte back is retried once on a new connection, as HTTP clients do when the
// server closed an idle connection (RFC 9112, 9.3.1), and counted apart.
struct load {
    endpoint to;
    bool keep_alive = false;
    bool finish = false;            // the clients stop after their current request
    bool cluster_stopping = false;  // a refused connect is the expected end from now on
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    std::uint64_t retried = 0;
    std::uint64_t ended_by_stop = 0;  // clients whose connect was refused after the stop began
    std::uint64_t retry_refused = 0;  // of those, refused on a retry
    std::map<unsigned, std::uint64_t> by_worker;
    std::vector<std::string> failures;  // the first few, for the report
    std::uint64_t milestone_at = 0;
    std::unique_ptr<latch> milestone;

    void succeeded(unsigned worker_id) {
        ++ok;
        ++by_worker[worker_id];
        if (milestone && ok >= milestone_at) milestone->set();
    }
    void fail(std::string why) {
        ++failed;
        if (failures.size() < 10) failures.push_back(std::move(why));
    }
};

constexpr std::uint64_t per_client_limit = 5000;    // a bound on the load, whatever happens
constexpr std::size_t requests_per_connection = 8;  // keep-alive

// Until the clients have had `more` more answers.
task<void> progress(load& l, std::uint64_t more) {
    l.milestone = std::make_unique<latch>();
    l.milestone_at = l.ok + more;
    (void)co_await l.milestone->wait();
}

// A connection, or the end: false when the connect was refused after the stop began.
task<bool> reconnect(load& l, std::optional<tcp_stream>& s, bool retry) {
    s.reset();
    auto c = co_await support::dial(l.to);
    if (c) {
        s.emplace(std::move(*c));
        co_return true;
    }
    if (l.cluster_stopping && c.error() == std::errc::connection_refused) {
        ++l.ended_by_stop;
        l.retry_refused += retry ? 1 : 0;
    } else {
        l.fail("connect: " + c.error().message());
    }
    co_return false;
}

// How a server's close of an idle connection meets a request sent on it: end of stream, a
// reset (the request arrived after the close), or a write that fails for the same reason.
bool closed_while_idle(const std::error_code& e) {
    return e == errc::eof || e == std::errc::connection_reset || e == std::errc::broken_pipe;
}

task<void> client(load& l, unsigned me) {
    std::optional<tcp_stream> s;
    std::size_t uses = 0;
    for (std::uint64_t n = 0; !l.finish && n < per_client_limit; ++n) {
        const std::string payload = std::to_string(me) + "." + std::to_string(n);
        const bool reused = s.has_value() && uses > 0;
        bool retry = false;
        if (!s) {
            const bool connected = co_await reconnect(l, s, false);
            if (!connected) co_return;
            uses = 0;
        }
        auto a = co_await support::request(*s, l.keep_alive ? 'k' : 'c', payload);
        if (!a.complete && a.bytes == 0 && reused && closed_while_idle(a.error)) {
            // The worker closed the idle connection as the request went out: once more, anew.
            ++l.retried;
            retry = true;
            const bool connected = co_await reconnect(l, s, true);
            if (!connected) co_return;
            uses = 0;
            a = co_await support::request(*s, 'k', payload);
        }
        if (!a.complete) {
            l.fail("request " + payload +
                   (retry    ? " (retried on a new connection)"
                    : reused ? " (kept-alive)"
                             : "") +
                   ": " + a.error.message() + " after " + std::to_string(a.bytes) + " bytes");
            s.reset();
            continue;
        }
        l.succeeded(a.worker_id);
        ++uses;
        if (!l.keep_alive || uses == requests_per_connection) {
            support::hang_up(*s);
            s.reset();
        }
    }
    if (s) support::hang_up(*s);
}

constexpr unsigned client_count = 8;
constexpr std::size_t cluster_size = 3;

void report_load(const char* what, schedule how, const load& l) {
    std::printf("%s, %s%s: %llu answered, %llu failed, %llu retried on a new connection (%llu of them refused: "
                "the stop), %llu clients ended by a refused connect, %zu workers answered\n",
                what, to_string(how), l.keep_alive ? ", keep-alive" : ", a connection per request",
                static_cast<unsigned long long>(l.ok), static_cast<unsigned long long>(l.failed),
                static_cast<unsigned long long>(l.retried), static_cast<unsigned long long>(l.retry_refused),
                static_cast<unsigned long long>(l.ended_by_stop), l.by_worker.size());
    std::fflush(stdout);
}

std::string failures_of(const load& l) {
    std::string out;
    for (const auto& f : l.failures) out += f + "; ";
    return out;
}

// n workers, and the clients running `l` against them in `clients`, 100 requests into it.
task<void> under_load(primary<proto>& p, std::size_t n, load& l, scope& clients) {
    const auto at = co_await support::start_listening(p, n);
    l.to = where(at);
    for (unsigned c = 0; c < client_count; ++c) clients.spawn(client(l, c));
    co_await support::bounded(progress(l, 100));
}

}  // namespace

TEST_CASE("a client load through a rolling reload sees no failed request") {
    const schedule how = GENERATE(from_range(std::begin(support::every_schedule), std::end(support::every_schedule)));
    const bool keep_alive = GENERATE(false, true);
    const std::size_t workers = GENERATE(as<std::size_t>{}, 1, 3);
    INFO(workers << " workers, " << to_string(how) << (keep_alive ? ", keep-alive" : ", a connection per request"));
    load l;
    l.keep_alive = keep_alive;
    support::with_primary(support::options_for(how), [&](primary<proto>& p) -> task<void> {
        scope clients;
        co_await under_load(p, workers, l, clients);
        const auto r = co_await support::bounded(p.reload());
        CHECK(r.ok);
        CHECK(r.replaced == workers);
        // The new workers serve. An answer of an old worker's may still be on its way to each
        // client as the reload ends: at most one a client.
        l.by_worker.clear();
        co_await support::bounded(progress(l, 100));
        l.finish = true;
        co_await support::bounded(support::joined(clients));
        std::uint64_t total = 0, by_new = 0;
        for (const auto& [id, n] : l.by_worker) {
            total += n;
            if (id > workers) by_new += n;
        }
        CHECK(by_new + client_count >= total);
    });
    report_load(workers == 1 ? "rolling reload of 1 worker" : "rolling reload of 3 workers", how, l);
    INFO(failures_of(l));
    CHECK(l.failed == 0);
    CHECK(l.ended_by_stop == 0);
}

TEST_CASE("a client load through a graceful stop sees no failed request, then its connects are refused") {
    const schedule how = GENERATE(from_range(std::begin(support::every_schedule), std::end(support::every_schedule)));
    const bool keep_alive = GENERATE(false, true);
    const bool by_shutdown = GENERATE(true, false);
    INFO((by_shutdown ? "shutdown(), " : "disconnect_all(), ")
         << to_string(how) << (keep_alive ? ", keep-alive" : ", a connection per request"));
    load l;
    l.keep_alive = keep_alive;
    support::with_primary(support::options_for(how), [&](primary<proto>& p) -> task<void> {
        scope clients;
        co_await under_load(p, cluster_size, l, clients);
        l.cluster_stopping = true;
        if (by_shutdown)
            co_await support::bounded(p.shutdown());
        else
            co_await support::bounded(p.disconnect_all());
        // Every client goes on until a connect is refused.
        co_await support::bounded(support::joined(clients));
        CHECK(l.ended_by_stop == client_count);
    });
    report_load(by_shutdown ? "graceful stop by shutdown()" : "graceful stop by disconnect_all()", how, l);
    INFO(failures_of(l));
    CHECK(l.failed == 0);
}
