// Workers that serve with Asio, as real processes with real clients: their heartbeats flow while
// Asio serves (one that runs Asio itself is killed as hung); Asio code sends, receives, requests
// and replies; cluster::asio::acceptor serves under every schedule, and the adopted connections
// count for least_connections and max_connections until their leases end; an Asio acceptor on a
// shared or reuseport listener's own socket; a graceful stop and a reload drain the Asio sessions;
// and Asio work that ignores the stop is ended by run()'s grace, leaking nothing.
#include <catch2/catch.hpp>

#include <cluster/asio.hpp>
#include <cluster/cluster.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "support/connections.hpp"
#include "support/descriptors.hpp"
#include "support/events.hpp"
#include "support/primary.hpp"

using namespace cluster;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
namespace ba = boost::asio;
using ba::experimental::as_tuple;
using support::bounded;
using support::proto;

namespace {

// How a test's workers serve.
struct settings {
    schedule how = schedule::round_robin;
    std::size_t max_connections = 0;
    bool native = false;        // accept on the listener's own socket, with an Asio acceptor
    bool ignores_stop = false;  // sessions that never look at the stop; run() with a grace
    bool accepts_late = false;  // accepts nothing until the worker is leaving
    std::string where = "127.0.0.1:0";
};

ba::awaitable<void> tell(worker<proto>& w, std::string text) {
    const support::note n{w.id(), std::move(text)};
    (void)co_await asio::async_await(w.send(n), ba::use_awaitable);
}

// The line protocol of support/connections.hpp: "<c> <payload>\n" answered "<id> <payload>\n";
// c closes after the answer, k keeps the connection for the next line, s answers only once the
// worker is leaving (a request in progress as the stop comes). Idle between requests, a session
// closes when the worker leaves, unless it ignores the stop.
ba::awaitable<void> session(worker<proto>& w, asio::connection<> c, bool watch_stop) {
    auto& s = c.socket;
    std::string buf;
    for (;;) {
        if (buf.empty() && watch_stop) {
            auto first = co_await (s.async_wait(ba::socket_base::wait_read, as_tuple(ba::use_awaitable)) ||
                                   asio::async_wait(w.stop_token(), as_tuple(ba::use_awaitable)));
            if (first.index() == 1) co_return;
        }
        auto [read_error, n] =
            co_await ba::async_read_until(s, ba::dynamic_buffer(buf), '\n', as_tuple(ba::use_awaitable));
        if (read_error) co_return;
        const std::string line = buf.substr(0, n - 1);
        buf.erase(0, n);
        if (line.starts_with("s ")) (void)co_await asio::async_wait(w.stop_token(), as_tuple(ba::use_awaitable));
        const std::string reply = std::to_string(w.id()) + " " + line.substr(2) + "\n";
        auto [write_error, written] = co_await ba::async_write(s, ba::buffer(reply), as_tuple(ba::use_awaitable));
        if (write_error || line.starts_with("c ") || (watch_stop && w.stopping())) co_return;
    }
}

ba::awaitable<void> serve(worker<proto>& w, asio::acceptor& a, bool watch_stop, bool late) {
    if (late) (void)co_await asio::async_wait(w.stop_token(), as_tuple(ba::use_awaitable));
    for (;;) {
        auto [ec, c] = co_await a.async_accept(as_tuple(ba::use_awaitable));
        if (ec == errc::listener_closed) co_return;
        if (ec) co_return co_await tell(w, "accept: " + ec.message());
        ba::co_spawn(a.get_executor(), session(w, std::move(c), watch_stop), ba::detached);
    }
}

// An Asio acceptor on the listener's own socket: what it accepts is counted by the listener
// through a lease. It stops with the worker.
ba::awaitable<void> serve_native(worker<proto>& w, listener& l, ba::ip::tcp::acceptor a) {
    for (;;) {
        auto next = co_await (a.async_accept(as_tuple(ba::use_awaitable)) ||
                              asio::async_wait(w.stop_token(), ba::use_awaitable));
        if (next.index() == 1) co_return;
        auto [ec, socket] = std::get<0>(std::move(next));
        if (ec) co_return co_await tell(w, "native accept: " + ec.message());
        asio::connection<> c{std::move(socket), l.count_accepted()};
        co_await tell(w, "native " + std::to_string(l.connections()));
        ba::co_spawn(a.get_executor(), session(w, std::move(c), true), ba::detached);
    }
}

// The primary's messages, from Asio code: pings answered; "ask" requests a pong of the primary
// and tells what came back.
ba::awaitable<void> messages(worker<proto>& w) {
    while (auto m = co_await asio::async_await(w.receive(), ba::use_awaitable)) {
        if (m->is<support::ping>()) {
            support::pong answer;
            answer.worker_id = w.id();
            (void)co_await asio::async_await(w.reply(*m, answer), ba::use_awaitable);
        } else if (auto* c = m->get_if<support::command>(); c && c->text == "ask") {
            const support::ping q{41};
            auto r = co_await asio::async_await(w.request<support::pong>(q, 5s), ba::use_awaitable);
            // Named first: g++ 12 copies a ?: of class type inside a co_await expression bit by
            // bit (docs/runtime.md), and the string's storage is then freed where it never was.
            std::string told = r ? "answered " + std::to_string(r->accepted) : "no answer: " + r.error().message();
            co_await tell(w, std::move(told));
        }
    }
}

// A cluster task awaiting an Asio operation.
task<void> after_a_timer(worker<proto>& w, ba::io_context& io) {
    ba::steady_timer timer(io, 20ms);
    auto waited = co_await timer.async_wait(asio::use_task);
    const support::note n{w.id(), waited ? "timer" : "timer: " + waited.error().message()};
    (void)co_await w.send(n);
}

task<void> say_listening(worker<proto>& w, const listener& l) {
    support::listen_result r;
    r.worker_id = w.id();
    r.local = l.local().to_string();
    r.port = l.local().port();
    (void)co_await w.send(r);
}

task<void> asio_worker(worker<proto>& w, const settings& s) {
    // The cluster loop's own eventfd for Asio, made at the first run(), is the loop's for good.
    (void)io::io_context::current_or_throw().notification_fd();
    const std::size_t fds = support::open_fd_count();
    {
        ba::io_context io{1};
        listener_options o;
        o.max_connections = s.max_connections;
        auto l = co_await w.listen(endpoint::parse(s.where).value(), s.how, o);
        co_await say_listening(w, l);
        std::optional<asio::acceptor> acceptor;
        if (s.native) {
            ba::co_spawn(io, serve_native(w, l, asio::native_acceptor(io.get_executor(), l)), ba::detached);
        } else {
            acceptor.emplace(io, std::move(l));
            ba::co_spawn(io, serve(w, *acceptor, !s.ignores_stop, s.accepts_late), ba::detached);
        }
        ba::co_spawn(io, messages(w), ba::detached);
        scope tasks;
        tasks.spawn(after_a_timer(w, io));
        if (s.ignores_stop) {
            auto ran = co_await asio::run(io, w.stop_token(), 200ms);
            const support::note n{w.id(), ran ? "drained" : "cut: " + ran.error().message()};
            (void)co_await w.send(n);
        } else {
            co_await asio::run(io);
        }
        co_await tasks.join();
    }
    const support::note n{w.id(), "fds " + std::to_string(support::open_fd_count() - fds)};
    (void)co_await w.send(n);
}

primary<proto>::worker_main main_for(settings s) {
    return [s](worker<proto>& w) { return asio_worker(w, s); };
}

primary_options options() {
    primary_options o;
    o.restart.mode = restart_mode::temporary;
    o.pick = [](const endpoint&, std::span<const candidate> live) { return live.front().worker_id; };
    return o;
}

template <class Body>
void with_asio_workers(const settings& s, Body&& body, primary_options o = options()) {
    support::with_primary<proto>(std::move(o), main_for(s), std::forward<Body>(body));
}

endpoint at(const support::listen_result& r) { return endpoint::parse(r.local).value(); }

// Busy Asio work for `total`: a timer every 10 ms, a burst of posted handlers at each.
ba::awaitable<void> keep_busy(std::chrono::milliseconds total) {
    ba::steady_timer timer(co_await ba::this_coro::executor);
    for (auto waited = 0ms; waited < total; waited += 10ms) {
        timer.expires_after(10ms);
        co_await timer.async_wait(ba::use_awaitable);
        for (int i = 0; i < 100; ++i) co_await ba::post(co_await ba::this_coro::executor, ba::use_awaitable);
    }
}

// Serves with Asio for 1.5 s, run by cluster::asio::run(), or by asio.run() itself (which
// blocks the worker's loop: no heartbeat leaves); then says so.
task<void> busy_worker(worker<proto>& w, bool shared) {
    ba::io_context io{1};
    ba::co_spawn(io, keep_busy(1500ms), ba::detached);
    if (shared)
        co_await asio::run(io);
    else
        io.run();
    const support::note n{w.id(), "served"};
    (void)co_await w.send(n);
}

}  // namespace

TEST_CASE(
    "heartbeats flow while Asio serves: a worker under run() is never taken for hung, one running Asio itself is") {
    const bool shared = GENERATE(true, false);
    INFO((shared ? "cluster::asio::run()" : "asio::io_context::run()"));
    primary_options o = options();
    o.heartbeat_timeout = 400ms;  // a heartbeat every 100 ms
    o.kill_timeout = 200ms;
    support::with_primary<proto>(
        o, [shared](worker<proto>& w) { return busy_worker(w, shared); },
        [shared](primary<proto>& p) -> task<void> {
            auto& h = co_await support::fork_worker(p);
            const unsigned id = h.id();
            if (shared) {
                auto served = co_await support::note_starting(p, "served");
                CHECK(served.worker_id == id);
                const auto status = p.status();
                REQUIRE(status.workers.size() == 1);
                CHECK(status.workers[0].heartbeat_rtt > 0us);
                CHECK(status.workers[0].counts.messages_received >= 10);  // 1.5 s of heartbeats, at least
                CHECK(status.hangs_killed == 0);
            } else {
                auto events = co_await support::events_through(p, id, event_kind::exit);
                CHECK(support::exit_of(events).hung());
            }
        });
}

TEST_CASE(
    "Asio code in a worker receives, replies, sends and requests, and a cluster task in it awaits an Asio timer") {
    with_asio_workers({}, [](primary<proto>& p) -> task<void> {
        const auto where = co_await support::start_listening(p, 1);
        auto timer = co_await support::note_starting(p, "timer");
        CHECK(timer.text == "timer");
        auto pongs = co_await support::ping_all(p);  // requests from the primary, answered from Asio
        REQUIRE(pongs.size() == 1);
        CHECK(pongs[0].worker_id == where.worker_id);
        auto& h = support::worker_of(p, where.worker_id);
        const support::command ask{"ask"};
        auto sent = co_await h.send(ask);
        REQUIRE(sent.has_value());
        auto question = co_await bounded(p.next_message<support::ping>());  // a request from Asio code
        CHECK(question.value.n == 41);
        support::pong answer;
        answer.accepted = 42;
        auto replied = co_await p.reply(question, answer);
        CHECK(replied.has_value());
        auto told = co_await support::note_starting(p, "answered");
        CHECK(told.text == "answered 42");
        // Regression: built by g++ 12, the worker aborted here, freeing that note's text (see
        // messages()), and nothing noticed.
        auto after = co_await support::ping_all(p);
        CHECK(after.size() == 1);
        CHECK(p.status().exits.empty());
    });
}

TEST_CASE("cluster::asio::acceptor serves under every schedule, and its worker leaks no descriptor") {
    const schedule how = GENERATE(from_range(std::begin(support::every_schedule), std::end(support::every_schedule)));
    INFO(to_string(how));
    settings s;
    s.how = how;
    with_asio_workers(s, [how](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 2);
        const bool spread =
            how == schedule::round_robin || how == schedule::least_connections || how == schedule::reuseport;
        const auto ids = co_await support::served_by_workers(at(a), 8, spread ? 2 : 1);
        if (spread) CHECK(ids.size() == 2);
        auto kept = co_await bounded(support::hold_one(at(a), "kept"));
        co_await bounded(p.disconnect_all());
        CHECK(co_await bounded(support::closed_by_peer(kept.stream, 5s)));  // idle: closed as it drained
        for (int i = 0; i < 2; ++i) {
            auto fds = co_await support::note_starting(p, "fds ");
            CHECK(fds.text == "fds 0");
        }
    });
}

TEST_CASE("least_connections counts adopted connections open until their leases end") {
    settings s;
    s.how = schedule::least_connections;
    with_asio_workers(s, [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 2);
        std::vector<support::held> held;
        for (int i = 0; i < 3; ++i) held.push_back(co_await bounded(support::hold_one(at(a), "h" + std::to_string(i))));
        std::map<unsigned, int> open;
        for (auto& h : held) ++open[h.worker_id];
        REQUIRE(open.size() == 2);
        const unsigned busier = open.begin()->second == 2 ? open.begin()->first : std::next(open.begin())->first;
        const unsigned other = busier == open.begin()->first ? std::next(open.begin())->first : open.begin()->first;
        // The other worker's connection ends: it has none, the busier still two.
        for (auto& h : held)
            if (h.worker_id == other) {
                support::hang_up(h.stream);
                CHECK(co_await bounded(support::closed_by_peer(h.stream, 5s)));
            }
        (void)co_await support::ping_all(p);  // its close report has reached the primary
        for (int i = 0; i < 2; ++i) {
            auto next = co_await bounded(support::hold_one(at(a), "n" + std::to_string(i)));
            CHECK(next.worker_id == other);  // 0 then 1 against the busier's 2
            held.push_back(std::move(next));
        }
    });
}

TEST_CASE("max_connections counts adopted connections: a full worker's next waits in the primary until one closes") {
    settings s;
    s.max_connections = 1;
    with_asio_workers(s, [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 2);
        auto first = co_await bounded(support::hold_one(at(a), "first"));
        auto second = co_await bounded(support::hold_one(at(a), "second"));
        CHECK(first.worker_id != second.worker_id);
        auto third = co_await bounded(support::ask_later(at(a), 'c', "third"));
        CHECK_FALSE(co_await support::closed_by_peer(third, 300ms));  // no answer, nor a close: it waits
        support::hang_up(first.stream);
        const unsigned id = co_await bounded(support::answer_of(third, "third"));
        CHECK(id == first.worker_id);
    });
}

TEST_CASE("shared and reuseport: an Asio acceptor on the listener's own socket accepts, and the listener counts it") {
    const schedule how = GENERATE(schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    settings s;
    s.how = how;
    s.native = true;
    with_asio_workers(s, [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        auto kept = co_await bounded(support::hold_one(at(a), "native"));
        CHECK(kept.worker_id == a.worker_id);
        auto counted = co_await support::note_starting(p, "native ");
        CHECK(counted.text == "native 1");
        auto again = co_await bounded(support::served_by(at(a), "again"));
        CHECK(again == a.worker_id);
    });
}

TEST_CASE("shared and reuseport: a connection the primary hands over ends the acceptor's wait on its own socket") {
    const schedule how = GENERATE(schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    settings s;
    s.how = how;
    s.where = "fd:web";
    with_asio_workers(s, [](primary<proto>& p) -> task<void> {
        // A spare beside the adopted socket (a binary upgrade's): the primary accepts on it.
        net::listen_options spare;
        spare.reuse_port = true;
        auto first = listen_socket(endpoint("127.0.0.1:0"), spare);
        const endpoint address = local_endpoint(first.get()).value();
        (void)p.adopt(std::move(first), "web");
        (void)p.adopt(listen_socket(address, spare), "web.1");
        const auto a = co_await support::start_listening(p, 1);
        // One at a time: each the kernel puts in the spare is handed over while the worker waits on its own.
        for (int i = 0; i < 16; ++i)
            CHECK(co_await bounded(support::served_by(address, "one" + std::to_string(i))) == a.worker_id);
    });
}

TEST_CASE("a graceful stop drains Asio sessions: the request in progress is answered, an idle connection closes") {
    with_asio_workers({}, [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        auto idle = co_await bounded(support::hold_one(at(a), "idle"));
        auto slow = co_await bounded(support::ask_later(at(a), 's', "slow"));
        (void)co_await support::ping_all(p);  // the slow request has reached its session
        scope stopping;
        stopping.spawn(p.disconnect_all());
        const unsigned id = co_await bounded(support::answer_of(slow, "slow"));
        CHECK(id == a.worker_id);
        CHECK(co_await bounded(support::closed_by_peer(idle.stream, 5s)));
        CHECK(co_await bounded(support::closed_by_peer(slow, 5s)));
        co_await bounded(support::joined(stopping));
        auto fds = co_await support::note_starting(p, "fds ");
        CHECK(fds.text == "fds 0");
    });
}

TEST_CASE("shared and reuseport: a graceful stop hands over what waited in the socket, and the acceptor serves it") {
    const schedule how = GENERATE(schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    settings s;
    s.how = how;
    s.accepts_late = true;
    with_asio_workers(s, [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        auto queued = co_await bounded(support::ask_later(at(a), 'c', "queued"));  // in the socket's queue
        CHECK_FALSE(co_await support::closed_by_peer(queued, 300ms));
        scope stopping;
        stopping.spawn(p.disconnect_all());
        const unsigned id = co_await bounded(support::answer_of(queued, "queued"));
        CHECK(id == a.worker_id);
        co_await bounded(support::joined(stopping));
    });
}

TEST_CASE("a reload drains the old worker's Asio sessions while the new worker serves") {
    with_asio_workers({}, [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        auto slow = co_await bounded(support::ask_later(at(a), 's', "slow"));
        (void)co_await support::ping_all(p);
        scope reloading;
        reloading.spawn([](primary<proto>& p) -> task<void> {
            auto r = co_await p.reload();
            CHECK(r.ok);
        }(p));
        const unsigned old_id = co_await bounded(support::answer_of(slow, "slow"));
        CHECK(old_id == a.worker_id);
        co_await bounded(support::joined(reloading));
        const unsigned now = co_await bounded(support::served_by(at(a), "after"));
        CHECK(now != a.worker_id);
    });
}

TEST_CASE("Asio work that ignores the stop: run()'s grace ends it, the worker exits at once, its clients are closed") {
    settings s;
    s.ignores_stop = true;
    primary_options o = options();
    o.shutdown_timeout = 20s;  // far past the grace: the worker must not need it
    with_asio_workers(
        s,
        [](primary<proto>& p) -> task<void> {
            const auto a = co_await support::start_listening(p, 1);
            auto stuck = co_await bounded(support::hold_one(at(a), "stuck"));
            const auto start = std::chrono::steady_clock::now();
            scope stopping;
            stopping.spawn(p.disconnect_all());
            auto cut = co_await support::note_starting(p, "cut");
            CHECK(cut.text == "cut: Connection timed out");
            CHECK(co_await bounded(support::closed_by_peer(stuck.stream, 5s)));
            auto fds = co_await support::note_starting(p, "fds ");
            CHECK(fds.text == "fds 0");
            auto events = co_await support::events_through(p, a.worker_id, event_kind::exit);
            const auto& exit = support::exit_of(events);
            CHECK(exit.status.exited());
            CHECK(exit.status.code == 0);
            CHECK_FALSE(exit.hung());
            CHECK(std::chrono::steady_clock::now() - start < 10s);
            co_await bounded(support::joined(stopping));
        },
        o);
}
