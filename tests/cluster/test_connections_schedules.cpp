// How a cluster's listening endpoints hand connections to its workers, with real processes
// (fork mode), threads where a thread listens the same, and real loopback clients: round robin's even spread, sticky's
// one address to one worker (and another once it dies), least_connections, custom with primary_options::pick, shared
// and reuseport, port 0, Unix-domain and IPv6 endpoints, and the refusals of listen().
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/connections.hpp"
#include "support/descriptors.hpp"
#include "support/temp_dir.hpp"

#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::proto;

namespace {

using handle = worker_handle<proto>;

// `clients` tasks, each making `each` connections, one request each, one after the other;
// adds who answered to `by_worker`.
task<void> one_client(endpoint to, std::size_t each, std::map<unsigned, std::size_t>& by_worker) {
    for (std::size_t i = 0; i < each; ++i) {
        const unsigned id = co_await support::served_by(to, std::to_string(i));
        ++by_worker[id];
    }
}

task<std::map<unsigned, std::size_t>> spread(endpoint to, std::size_t clients, std::size_t each) {
    std::map<unsigned, std::size_t> by_worker;
    scope s;
    for (std::size_t c = 0; c < clients; ++c) s.spawn(one_client(to, each, by_worker));
    co_await s.join();
    co_return by_worker;
}

std::string show(const std::map<unsigned, std::size_t>& by_worker) {
    std::string out;
    for (const auto& [id, n] : by_worker) out += "worker " + std::to_string(id) + ": " + std::to_string(n) + "; ";
    return out;
}

// What a custom schedule's pick saw, in the primary (this process).
struct pick_log {
    std::size_t calls = 0;
    std::vector<std::vector<candidate>> seen;
    std::vector<std::string> clients;
    bool answer_unknown = false;  // answers an id no worker has
};
pick_log picks;

unsigned pick_highest(const endpoint& client, std::span<const candidate> live) {
    ++picks.calls;
    picks.seen.emplace_back(live.begin(), live.end());
    picks.clients.push_back(client.address());
    if (picks.answer_unknown) return 9999;
    unsigned best = 0;
    for (const auto& c : live) best = std::max(best, c.worker_id);
    return best;
}

}  // namespace

TEST_CASE("round_robin: 400 connections over 4 workers land within 10 percent of even") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode));
    auto o = support::options_for(schedule::round_robin);
    o.mode = mode;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 4);
        const auto by_worker = co_await support::bounded(spread(where(at), 8, 50));
        INFO(show(by_worker));
        REQUIRE(by_worker.size() == 4);
        for (const auto& [id, n] : by_worker) {
            CHECK(n >= 90);
            CHECK(n <= 110);
        }
    });
}

TEST_CASE("every schedule serves connections, from every worker where the primary or SO_REUSEPORT spreads them") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    const schedule how = GENERATE(from_range(std::begin(support::every_schedule), std::end(support::every_schedule)));
    INFO(to_string(mode) << ", " << to_string(how));
    auto o = support::options_for(how);
    o.mode = mode;
    if (how == schedule::custom) {
        // In turn, as round robin would: the point here is that it serves.
        o.pick = [](const endpoint&, std::span<const candidate> live) {
            static std::size_t turn = 0;
            return live[turn++ % live.size()].worker_id;
        };
    }
    support::with_primary(o, [&](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 2);
        const auto by_worker = co_await support::bounded(spread(where(at), 4, 10));
        INFO(show(by_worker));
        std::size_t total = 0;
        for (const auto& [id, n] : by_worker) total += n;
        CHECK(total == 40);
        // shared: whichever worker's accept the kernel wakes; sticky: one client address.
        if (how != schedule::shared && how != schedule::sticky) CHECK(by_worker.size() == 2);
    });
}

TEST_CASE("port 0: every worker gets the same port, and each listening event carries it") {
    const schedule how = GENERATE(schedule::round_robin, schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    support::with_primary(support::options_for(how), [](primary<proto>& p) -> task<void> {
        for (int i = 0; i < 3; ++i) (void)co_await support::fork_worker(p);
        std::set<std::uint16_t> announced, reported;
        for (int i = 0; i < 3; ++i) {
            const auto e = co_await support::bounded(p.next<listening_event>());
            CHECK(e.family == AF_INET);
            CHECK(e.address == "127.0.0.1");
            announced.insert(e.port);
        }
        for (int i = 0; i < 3; ++i) {
            const auto r = co_await support::listening(p);
            reported.insert(r.port);
        }
        REQUIRE(announced.size() == 1);
        CHECK(*announced.begin() != 0);
        CHECK(reported == announced);
        const auto to = endpoint::tcp("127.0.0.1", *announced.begin());
        const unsigned id = co_await support::bounded(support::served_by(to));
        CHECK(id >= 1);
        CHECK(id <= 3);
    });
}

TEST_CASE("sticky: one client address keeps its worker across reconnects, and addresses spread over workers") {
    support::with_primary(support::options_for(schedule::sticky), [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 4);
        std::map<std::string, unsigned> home;
        std::set<unsigned> used;
        for (int host = 2; host < 26; ++host) {
            const std::string from = "127.0.0." + std::to_string(host);
            INFO("client " << from);
            for (int again = 0; again < 3; ++again) {
                const unsigned id = co_await support::bounded(support::served_by(where(at), "x", from));
                if (again == 0) home[from] = id;
                CHECK(id == home[from]);
            }
            used.insert(home[from]);
        }
        // 24 addresses over 4 workers: the hash is the same on every run, and uses them all.
        CHECK(used.size() == 4);
    });
}

TEST_CASE("sticky: an address whose worker died moves to another worker and stays there, the others keep theirs") {
    support::with_primary(support::options_for(schedule::sticky), [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 3);
        std::map<std::string, unsigned> home;
        std::map<unsigned, std::size_t> load;
        for (int host = 2; host < 14; ++host) {
            const std::string from = "127.0.0." + std::to_string(host);
            home[from] = co_await support::bounded(support::served_by(where(at), "x", from));
            ++load[home[from]];
        }
        // The worker with the most addresses dies.
        const auto busiest =
            std::max_element(load.begin(), load.end(), [](auto& a, auto& b) { return a.second < b.second; });
        const unsigned dead = busiest->first;
        INFO("worker " << dead << " had " << busiest->second << " of 12 addresses");
        REQUIRE(support::worker_of(p, dead).kill(SIGKILL).has_value());
        for (;;) {
            const auto e = co_await support::bounded(p.next<exit_event>());
            if (e.worker_id == dead) break;
        }
        for (const auto& [from, was] : home) {
            INFO("client " << from << ", served by worker " << was << " before");
            const unsigned now = co_await support::bounded(support::served_by(where(at), "x", from));
            const unsigned again = co_await support::bounded(support::served_by(where(at), "x", from));
            CHECK(again == now);
            if (was == dead)
                CHECK(now != dead);
            else
                CHECK(now == was);
        }
    });
}

TEST_CASE("least_connections: a new connection goes to the worker with the fewest open") {
    auto o = support::options_for(schedule::least_connections);
    o.env[support::setting::note_closes] = "1";
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 1);
        std::vector<support::held> first;
        for (int i = 0; i < 3; ++i) first.push_back(co_await support::bounded(support::hold_one(where(at))));
        const unsigned one = first.front().worker_id;
        for (const auto& h : first) CHECK(h.worker_id == one);

        // A second worker with none: it gets the next three, where round robin would alternate.
        const auto second = co_await support::start_listening(p, 1);
        (void)second;
        std::vector<support::held> next;
        for (int i = 0; i < 3; ++i) next.push_back(co_await support::bounded(support::hold_one(where(at))));
        const unsigned two = next.front().worker_id;
        CHECK(two != one);
        for (const auto& h : next) CHECK(h.worker_id == two);

        // Two of the first worker's close: it has the fewest, and gets the next two.
        for (int i = 0; i < 2; ++i) support::hang_up(first[static_cast<std::size_t>(i)].stream);
        for (int i = 0; i < 2; ++i) (void)co_await support::note_starting(p, "closed");
        for (int i = 0; i < 2; ++i) {
            auto h = co_await support::bounded(support::hold_one(where(at)));
            CHECK(h.worker_id == one);
            next.push_back(std::move(h));
        }
        // Three each now: ties go in turn.
        std::set<unsigned> tie;
        for (int i = 0; i < 2; ++i) {
            auto h = co_await support::bounded(support::hold_one(where(at)));
            tie.insert(h.worker_id);
            next.push_back(std::move(h));
        }
        CHECK(tie == std::set<unsigned>{one, two});
    });
}

TEST_CASE("custom: primary_options::pick chooses the worker, from the live candidates with their open connections") {
    picks = pick_log{};
    auto o = support::options_for(schedule::custom);
    o.pick = pick_highest;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 3);
        std::vector<support::held> kept;
        for (std::size_t i = 0; i < 4; ++i) {
            auto h = co_await support::bounded(support::hold_one(where(at)));
            CHECK(h.worker_id == 3);
            kept.push_back(std::move(h));
        }
        REQUIRE(picks.calls == 4);
        for (std::size_t i = 0; i < picks.seen.size(); ++i) {
            INFO("pick " << i);
            const auto& live = picks.seen[i];
            REQUIRE(live.size() == 3);
            std::set<unsigned> ids;
            for (const auto& c : live) {
                ids.insert(c.worker_id);
                CHECK(c.connections == (c.worker_id == 3 ? i : 0));
            }
            CHECK(ids == std::set<unsigned>{1, 2, 3});
            CHECK(picks.clients[i] == "127.0.0.1");
        }
        // An answer that is no live worker falls back to round robin.
        picks.answer_unknown = true;
        std::set<unsigned> fallback;
        for (int i = 0; i < 3; ++i) fallback.insert(co_await support::bounded(support::served_by(where(at))));
        CHECK(fallback == std::set<unsigned>{1, 2, 3});
    });
}

TEST_CASE("custom without primary_options::pick: listen() throws and try_listen() fails with EINVAL, saying why") {
    auto o = support::options_for(schedule::custom);
    o.pick = nullptr;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        (void)co_await support::fork_worker(p);
        const auto r = (co_await support::bounded(p.next_message<support::listen_result>())).value;
        CHECK(r.error == EINVAL);
        CHECK(r.category == std::string(std::system_category().name()));
        INFO(r.what);
        CHECK(r.what.find("cannot listen on 127.0.0.1:0") != std::string::npos);
        CHECK(r.what.find("primary_options::pick") != std::string::npos);
    });
}

TEST_CASE("a second schedule on an endpoint the cluster listens on is refused with EADDRINUSE") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        const auto at = co_await support::start_listening(p, 1);
        const auto shared = support::with_env(support::setting::schedule, "shared");
        (void)co_await support::fork_worker(p, shared);
        const auto refused = (co_await support::bounded(p.next_message<support::listen_result>())).value;
        CHECK(refused.error == EADDRINUSE);
        INFO(refused.what);
        CHECK(refused.what.find("round_robin") != std::string::npos);
        // The same schedule joins, on the same port.
        const auto joined = co_await support::start_listening(p, 1);
        CHECK(joined.port == at.port);
        std::set<unsigned> ids;
        for (int i = 0; i < 2; ++i) ids.insert(co_await support::bounded(support::served_by(where(at))));
        CHECK(ids.size() == 2);
    });
}

TEST_CASE("reuseport on a Unix-domain endpoint is refused with EINVAL") {
    const support::temp_dir dir;
    support::with_primary(support::options_for(schedule::reuseport, "unix:" + dir.str() + "/s.sock"),
                          [](primary<proto>& p) -> task<void> {
                              (void)co_await support::fork_worker(p);
                              const auto r =
                                  (co_await support::bounded(p.next_message<support::listen_result>())).value;
                              CHECK(r.error == EINVAL);
                              INFO(r.what);
                              CHECK(r.what.find("reuseport") != std::string::npos);
                          });
}

TEST_CASE("a Unix-domain endpoint serves connections, and its socket file goes with the primary") {
    const schedule how = GENERATE(schedule::round_robin, schedule::shared, schedule::least_connections);
    INFO(to_string(how));
    const support::temp_dir dir;
    const std::string path = dir.str() + "/s.sock";
    support::with_primary(support::options_for(how, "unix:" + path), [&](primary<proto>& p) -> task<void> {
        for (int i = 0; i < 2; ++i) (void)co_await support::fork_worker(p);
        for (int i = 0; i < 2; ++i) {
            const auto e = co_await support::bounded(p.next<listening_event>());
            CHECK(e.family == AF_UNIX);
            CHECK(e.address == path);
        }
        for (int i = 0; i < 2; ++i) (void)co_await support::listening(p);
        std::set<unsigned> ids;
        for (int i = 0; i < 6; ++i)
            ids.insert(co_await support::bounded(support::served_by(endpoint::unix_socket(path))));
        if (how != schedule::shared) CHECK(ids.size() == 2);
    });
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("an IPv6 endpoint [::1]:0 serves connections") {
    const schedule how = GENERATE(schedule::round_robin, schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    support::with_primary(support::options_for(how, "[::1]:0"), [&](primary<proto>& p) -> task<void> {
        for (int i = 0; i < 2; ++i) (void)co_await support::fork_worker(p);
        std::set<std::uint16_t> ports;
        for (int i = 0; i < 2; ++i) {
            const auto e = co_await support::bounded(p.next<listening_event>());
            CHECK(e.family == AF_INET6);
            CHECK(e.address == "::1");
            ports.insert(e.port);
        }
        REQUIRE(ports.size() == 1);
        for (int i = 0; i < 2; ++i) (void)co_await support::listening(p);
        const auto to = endpoint::tcp("::1", *ports.begin());
        std::set<unsigned> ids;
        for (int i = 0; i < 8; ++i) ids.insert(co_await support::bounded(support::served_by(to)));
        if (how == schedule::round_robin) CHECK(ids.size() == 2);
    });
}
