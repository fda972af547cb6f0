// The built-in series written from a cluster_status: the names the issue fixes, a sample per
// worker labelled by id, the totals without a label, and a page promtool accepts.
#include <catch2/catch.hpp>

#include "support/promtool.hpp"

#include <cluster/metrics/status_series.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace cluster;
using namespace std::chrono_literals;

namespace {

cluster_status two_workers() {
    cluster_status s;
    s.primary_pid = 10;
    s.uptime = 90s;
    s.workers_wanted = 2;
    s.restarts = 3;
    s.hangs_killed = 1;
    s.exits = {{"crash", 2}, {"hung", 1}, {"scale down", 1}};
    s.reloads = 1;
    s.last_reload = 1500ms;
    s.signals = {{"SIGHUP", 1}, {"SIGTTIN", 2}};
    s.totals.messages_sent = 40;
    s.totals.connections_handed = 9;
    s.totals.connections_refused = 1;
    s.primary_rss_bytes = 4096;
    s.primary_cpu_seconds = 0.25;
    for (unsigned id : {4u, 7u}) {
        worker_status w;
        w.id = id;
        w.rss_bytes = 1000 * id;
        w.heartbeat_rtt = 250us;
        w.counts.connections_handed = id;
        w.connections_open = 1;
        s.workers.push_back(w);
    }
    return s;
}

bool has_line(const std::string& page, const std::string& line) {
    return page.starts_with(line + "\n") || page.find("\n" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("status series: the issue's names, per worker labelled, totals unlabelled") {
    std::string page;
    metrics::text_writer w(page);
    metrics::write_status(w, two_workers());
    INFO(page);
    CHECK(page.starts_with("# HELP cluster_workers "));
    for (const char* line : {"# TYPE cluster_workers gauge",
                             "cluster_workers 2",
                             "cluster_workers_wanted 2",
                             "# TYPE cluster_worker_restarts_total counter",
                             "cluster_worker_restarts_total 3",
                             "cluster_worker_exits_total{reason=\"crash\"} 2",
                             "cluster_worker_exits_total{reason=\"scale down\"} 1",
                             "cluster_worker_hangs_total 1",
                             "cluster_reloads_total 1",
                             "cluster_reload_duration_seconds 1.5",
                             "cluster_signals_total{signal=\"SIGHUP\"} 1",
                             "cluster_signals_total{signal=\"SIGTTIN\"} 2",
                             "cluster_uptime_seconds 90",
                             "cluster_primary_rss_bytes 4096",
                             "cluster_primary_cpu_seconds_total 0.25",
                             "cluster_messages_sent_total 40",
                             "cluster_handoffs_total{result=\"taken\"} 9",
                             "cluster_handoffs_total{result=\"refused\"} 1",
                             "cluster_worker_rss_bytes{worker=\"4\"} 4000",
                             "cluster_worker_rss_bytes{worker=\"7\"} 7000",
                             "cluster_connections_handed_total{worker=\"7\"} 7",
                             "cluster_worker_heartbeat_rtt_seconds{worker=\"4\"} 0.00025",
                             "cluster_worker_connections_open{worker=\"4\"} 1",
                             "# TYPE cluster_worker_cpu_seconds_total counter"}) {
        INFO(line);
        CHECK(has_line(page, line));
    }
    const auto verdict = support::promtool_check(page);
    if (!verdict) {
        WARN("skipped promtool: not installed (Debian's prometheus package)");
        return;
    }
    INFO(verdict->said);
    CHECK(verdict->accepted);
}

TEST_CASE("status series: a cluster with no worker still writes every family, with no per-worker sample") {
    std::string page;
    metrics::text_writer w(page);
    metrics::write_status(w, cluster_status{});
    CHECK(has_line(page, "cluster_workers 0"));
    CHECK(has_line(page, "# TYPE cluster_worker_rss_bytes gauge"));
    CHECK(page.find("{worker=") == std::string::npos);
}
