// cluster_history: exits counted by reason (the primary's, else exit or crash), hangs, restarts
// per slot, reloads, and the counts of workers gone added for good.
#include <catch2/catch.hpp>

#include <cluster/detail/cluster_history.hpp>

#include <chrono>

using namespace cluster;
using cluster::detail::cluster_history;

TEST_CASE("cluster history: what exits, restarts and reloads leave behind") {
    cluster_history h;
    worker_counts c;
    c.messages_sent = 3;
    c.bytes_received = 100;
    c.connections_handed = 2;
    h.worker_exited(c, stop_reason::none, io::exit_status{.code = 0});
    h.worker_exited(c, stop_reason::none, io::exit_status{.code = 1});
    h.worker_exited(c, stop_reason::none, io::exit_status{.signal = 9});
    h.worker_exited(c, stop_reason::hung, io::exit_status{.signal = 15});
    h.worker_exited(c, stop_reason::scale_down, io::exit_status{});
    h.restarted(1);
    h.restarted(1);
    h.restarted(2);
    h.reloaded(std::chrono::milliseconds(250));
    cluster_status s;
    h.fill(s, std::chrono::steady_clock::now());
    CHECK(s.exits == std::map<std::string, std::uint64_t>{{"exit", 1}, {"crash", 2}, {"hung", 1}, {"scale down", 1}});
    CHECK(s.hangs_killed == 1);
    CHECK(s.restarts == 3);
    CHECK(h.restarts_of(1) == 2);
    CHECK(h.restarts_of(2) == 1);
    CHECK(h.restarts_of(3) == 0);
    CHECK(s.reloads == 1);
    CHECK(s.last_reload == std::chrono::milliseconds(250));
    CHECK(s.totals.messages_sent == 15);
    CHECK(s.totals.bytes_received == 500);
    CHECK(s.totals.connections_handed == 10);
    CHECK(s.uptime >= std::chrono::steady_clock::duration::zero());
}
