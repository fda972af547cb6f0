// Tests of cluster::cluster_status as primary<P>::status() fills it: a scripted history —
// 100 connections, 1,000 messages, 3 crashes, a hang, a reload — and what the snapshot says
// after each step; counters never go down across restarts; the heartbeat's round trip is measured.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/connections.hpp"
#include "support/events.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <string>

using namespace cluster;
using namespace std::chrono_literals;
using support::bounded;
using support::proto;

namespace {

constexpr auto hung_after = 400ms;

// serve_lines workers, round robin, restarted at once, hung ones killed soon.
primary_options watched_servers() {
    auto o = support::options_for(schedule::round_robin);
    o.restart.mode = restart_mode::permanent;
    o.restart.initial_delay = 1ms;
    o.restart.jitter = 0;
    o.restart.min_uptime = 0ms;
    o.heartbeat_timeout = hung_after;
    o.kill_timeout = 100ms;
    return o;
}

const worker_status* worker_in(const cluster_status& s, unsigned id) {
    for (const auto& w : s.workers)
        if (w.id == id) return &w;
    return nullptr;
}

std::uint64_t handed_now(const cluster_status& s) {
    std::uint64_t n = 0;
    for (const auto& w : s.workers) n += w.counts.connections_handed;
    return n;
}

std::uint64_t open_now(const cluster_status& s) {
    std::uint64_t n = 0;
    for (const auto& w : s.workers) n += w.connections_open;
    return n;
}

// Every total of `later` is at least `earlier`'s.
void check_not_lower(const worker_counts& earlier, const worker_counts& later) {
    CHECK(later.messages_sent >= earlier.messages_sent);
    CHECK(later.messages_received >= earlier.messages_received);
    CHECK(later.bytes_sent >= earlier.bytes_sent);
    CHECK(later.bytes_received >= earlier.bytes_received);
    CHECK(later.connections_handed >= earlier.connections_handed);
    CHECK(later.connections_refused >= earlier.connections_refused);
}

// status() once `ok` holds of it, looking again at each change: heartbeats make no event.
// Checks the only worker's state, while another task waits.
task<void> state_now(primary<proto>& p, worker_state expected) {
    auto s = p.status();
    REQUIRE(s.workers.size() == 1);
    CHECK(s.workers[0].state == expected);
    co_return;
}

// The exit of `id`, and its replacement listening.
task<void> replaced(primary<proto>& p, unsigned id, stop_reason why) {
    for (;;) {
        auto gone = co_await bounded(p.next<exit_event>());
        if (gone.worker_id != id) continue;
        CHECK(gone.reason == why);
        break;
    }
    (void)co_await support::listening(p);
}

}  // namespace

TEST_CASE("status: a cluster's history — 100 connections, 1,000 messages, 3 crashes, a hang, a reload — counted as it "
          "happens") {
    support::with_primary(watched_servers(), [](primary<proto>& p) -> task<void> {
        const auto where = co_await support::start_listening(p, 2);
        const endpoint to(where.local);
        for (int i = 0; i < 99; ++i) (void)co_await support::served_by(to);
        auto kept = co_await support::hold_one(to);
        for (int i = 0; i < 500; ++i) (void)co_await support::ping_all(p);  // a ping and a pong each way

        // The closes of the served connections come as the workers close them, after their answers.
        auto first = co_await support::status_when(p, [](const cluster_status& s) {
            return s.workers.size() == 2 && s.workers[0].heartbeat_rtt.count() > 0 &&
                   s.workers[1].heartbeat_rtt.count() > 0 && open_now(s) == 1;
        });
        CHECK(first.primary_pid == ::getpid());
        CHECK(first.workers_wanted == 2);
        CHECK(first.restarts == 0);
        CHECK(first.exits.empty());
        CHECK(first.primary_rss_bytes > 0);
        CHECK(first.uptime > 0s);
        CHECK(handed_now(first) == 100);
        CHECK(first.totals.connections_handed == 100);
        CHECK(first.totals.connections_refused == 0);
        CHECK(first.totals.messages_sent >= 1000);
        CHECK(first.totals.messages_received >= 1000);
        for (const auto& w : first.workers) {
            INFO("worker " << w.id);
            CHECK(w.state == worker_state::ready);
            CHECK(w.pid > 0);
            CHECK(w.rss_bytes > 0);
            CHECK(w.cpu_seconds >= 0);
            CHECK(w.restarts == 0);
            CHECK(w.connections_held == 0);
            CHECK(w.heartbeat_rtt < hung_after);
            // settings and 500 pings one way; online, listening, the answers, 500 pongs and heartbeats the other.
            CHECK(w.counts.messages_sent >= 501);
            CHECK(w.counts.messages_received >= 503);
            CHECK(w.counts.bytes_sent > w.counts.messages_sent * 24);
            CHECK(w.counts.bytes_received > w.counts.messages_received * 24);
        }
        const auto* holder = worker_in(first, kept.worker_id);
        REQUIRE(holder);
        CHECK(holder->connections_open == 1);

        // Three crashes in one slot (workers 1, 3, 4): its next worker counts three restarts,
        // and the dead ones' counts stay in the totals.
        auto before = first.totals;
        for (const unsigned id : {1u, 3u, 4u}) {
            REQUIRE(p.worker(id));
            (void)p.worker(id)->kill(SIGKILL);
            co_await replaced(p, id, stop_reason::none);
            const auto now = p.status();
            check_not_lower(before, now.totals);
            before = now.totals;
        }
        auto crashed = p.status();
        CHECK(crashed.restarts == 3);
        CHECK(crashed.exits == std::map<std::string, std::uint64_t>{{"crash", 3}});
        CHECK(crashed.totals.connections_handed == 100);
        CHECK(crashed.totals.messages_sent >= first.totals.messages_sent);
        REQUIRE(worker_in(crashed, 5));
        CHECK(worker_in(crashed, 5)->restarts == 3);
        CHECK(worker_in(crashed, 5)->slot == worker_in(first, 1)->slot);
        CHECK(worker_in(crashed, 2)->restarts == 0);

        // A hang: a stopped worker sends no heartbeat, and is killed.
        REQUIRE(::kill(p.worker(2)->pid(), SIGSTOP) == 0);
        co_await replaced(p, 2, stop_reason::hung);
        auto hung = p.status();
        CHECK(hung.hangs_killed == 1);
        CHECK(hung.restarts == 4);
        CHECK(hung.exits == std::map<std::string, std::uint64_t>{{"crash", 3}, {"hung", 1}});
        check_not_lower(crashed.totals, hung.totals);

        // A reload replaces both; its duration is the last one's.
        auto reload = co_await bounded(p.reload());
        CHECK(reload.ok);
        auto reloaded =
            co_await support::status_when(p, [](const cluster_status& s) { return s.exits.count("reload"); });
        CHECK(reloaded.reloads == 1);
        CHECK(reloaded.last_reload > 0s);
        CHECK(reloaded.last_reload < reloaded.uptime);
        CHECK(reloaded.restarts == 4);
        check_not_lower(hung.totals, reloaded.totals);
        CHECK(reloaded.totals.connections_handed == 100);
        support::hang_up(kept.stream);
    });
}

TEST_CASE("status: a worker's state goes starting, online, ready, leaving") {
    auto o = support::scripted(start_mode::fork, support::behaviour::ready_on_go);
    o.wait_ready = true;
    support::with_primary(std::move(o), [](primary<proto>& p) -> task<void> {
        auto& h = co_await support::fork_worker(p);
        auto s = p.status();
        REQUIRE(s.workers.size() == 1);
        CHECK(s.workers[0].state == worker_state::starting);
        (void)co_await bounded(p.next_message<support::waiting>());
        CHECK(p.status().workers[0].state == worker_state::online);
        co_await support::send_go(p, h.id());
        auto serving = co_await bounded(p.worker_in_slot(h.slot()));
        REQUIRE(serving.has_value());
        CHECK(p.status().workers[0].state == worker_state::ready);
        (void)co_await bounded(io::when_all(h.disconnect(), state_now(p, worker_state::leaving)));
        (void)co_await bounded(p.next<exit_event>());
        CHECK(p.status().workers.empty());
    });
}

TEST_CASE("status: with heartbeats off, the round trip stays 0 and nothing else changes") {
    auto o = support::scripted(start_mode::fork, support::behaviour::answer_work);
    o.heartbeat_timeout = 0ms;
    support::with_primary(std::move(o), [](primary<proto>& p) -> task<void> {
        auto& h = co_await support::fork_worker(p);
        const support::work job{7};
        auto done = co_await h.request<support::work_done>(job, support::wait_limit);
        REQUIRE(done.has_value());
        auto s = p.status();
        REQUIRE(s.workers.size() == 1);
        CHECK(s.workers[0].heartbeat_rtt.count() == 0);
        CHECK(s.workers[0].counts.messages_received >= 2);
    });
}

TEST_CASE("status: status_changed() completes at a heartbeat, which makes no event, and when asked to stop") {
    auto o = support::scripted(start_mode::fork, support::behaviour::answer_work);
    o.heartbeat_timeout = 200ms;  // a heartbeat every 50 ms
    support::with_primary(std::move(o), [](primary<proto>& p) -> task<void> {
        (void)co_await support::fork_worker(p);
        (void)co_await bounded(p.next<online_event>());
        const auto before = p.status().workers[0].counts.messages_received;
        auto changed = co_await bounded(p.status_changed());
        REQUIRE(changed.has_value());
        CHECK(p.status().workers[0].counts.messages_received > before);

        std::stop_source stop;
        stop.request_stop();
        auto refused = co_await p.status_changed().with_stop_token(stop.get_token());
        CHECK(refused.error() == std::errc::operation_canceled);
    });
}
