// Tests of the primary's /metrics (primary_options::metrics, detail::metrics_endpoint): the
// page's series and values, promtool's verdict on it, and bad clients — garbage, a request
// never finished, a huge head, more clients than it serves — none of which delays supervision.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>
#include <cluster/detail/metrics_endpoint.hpp>

#include "support/connections.hpp"
#include "support/primary.hpp"
#include "support/promtool.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::bounded;
using support::proto;

namespace {

// serve_lines workers, restarted at once, and /metrics on a port the kernel picks.
primary_options exported() {
    auto o = support::options_for(schedule::round_robin);
    o.restart.mode = restart_mode::permanent;
    o.restart.initial_delay = 1ms;
    o.restart.jitter = 0;
    o.restart.min_uptime = 0ms;
    o.metrics = endpoint("127.0.0.1:0");
    return o;
}

// Sends `request` on a new connection to the endpoint and reads until the primary closes it.
task<std::string> exchange(endpoint to, std::string request) {
    auto s = co_await support::dial(to);
    REQUIRE(s.has_value());
    if (!request.empty()) {
        auto sent = co_await s->write(std::span(request.data(), request.size()));
        REQUIRE(sent.has_value());
    }
    std::string got;
    std::array<char, 4096> buf{};
    for (;;) {
        auto n = co_await s->read_some(std::span(buf)).with_timeout(support::wait_limit);
        if (!n || *n == 0) break;
        got.append(buf.data(), *n);
    }
    co_return got;
}

std::string body_of(const std::string& response) {
    const auto end = response.find("\r\n\r\n");
    return end == std::string::npos ? std::string{} : response.substr(end + 4);
}

bool page_has_line(const std::string& page, const std::string& line) {
    return page.starts_with(line + "\n") || page.find("\n" + line + "\n") != std::string::npos;
}

// The value of the sample whose line starts with `series ` ("name{labels}"); -1 if none.
double value_of(const std::string& page, const std::string& series) {
    const std::string start = series + " ";
    const auto at = page.starts_with(start) ? 0 : page.find("\n" + start);
    if (at == std::string::npos) return -1;
    const auto from = page.find(' ', at + 1) + 1;
    return std::strtod(page.c_str() + from, nullptr);
}

void check_with_promtool(const std::string& page) {
    const auto verdict = support::promtool_check(page);
    if (!verdict) {
        WARN("skipped promtool: not installed (Debian's prometheus package)");
        return;
    }
    INFO(verdict->said);
    CHECK(verdict->accepted);
}

const std::string get_metrics = "GET /metrics HTTP/1.1\r\nHost: test\r\nUser-Agent: catch\r\n\r\n";

}  // namespace

TEST_CASE("metrics endpoint: off by default") {
    support::with_primary(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        CHECK(p.metrics_endpoint().empty());
        co_return;
    });
}

TEST_CASE("metrics endpoint: GET /metrics gives every built-in series with its value, which promtool accepts") {
    support::with_primary(exported(), [](primary<proto>& p) -> task<void> {
        const endpoint at = p.metrics_endpoint();
        REQUIRE(at.port() != 0);
        const auto where = co_await support::start_listening(p, 2);
        const endpoint to(where.local);
        for (int i = 0; i < 3; ++i) (void)co_await support::served_by(to);
        (void)co_await support::ping_all(p);
        REQUIRE(p.worker(1));
        (void)p.worker(1)->kill(SIGKILL);
        (void)co_await bounded(p.next<exit_event>());
        (void)co_await support::listening(p);
        (void)co_await support::ping_all(p);

        const auto response = co_await exchange(at, get_metrics);
        INFO(response);
        REQUIRE(response.starts_with("HTTP/1.1 200 OK\r\n"));
        CHECK(response.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
        const auto page = body_of(response);
        const auto s = p.status();
        CHECK(page_has_line(page, "# TYPE cluster_workers gauge"));
        CHECK(page_has_line(page, "cluster_workers 2"));
        CHECK(page_has_line(page, "cluster_workers_wanted 2"));
        CHECK(page_has_line(page, "# TYPE cluster_worker_restarts_total counter"));
        CHECK(page_has_line(page, "cluster_worker_restarts_total 1"));
        CHECK(page_has_line(page, "cluster_worker_exits_total{reason=\"crash\"} 1"));
        CHECK(page_has_line(page, "cluster_worker_hangs_total 0"));
        CHECK(page_has_line(page, "cluster_reloads_total 0"));
        CHECK(page_has_line(page, "cluster_reload_duration_seconds 0"));
        CHECK(value_of(page, "cluster_uptime_seconds") > 0);
        CHECK(value_of(page, "cluster_primary_rss_bytes") > 0);
        CHECK(value_of(page, "cluster_primary_cpu_seconds_total") >= 0);
        CHECK(page_has_line(page, "cluster_handoffs_total{result=\"taken\"} 3"));
        CHECK(page_has_line(page, "cluster_handoffs_total{result=\"refused\"} 0"));
        CHECK(value_of(page, "cluster_messages_sent_total") >= static_cast<double>(s.totals.messages_sent) - 2);
        CHECK(value_of(page, "cluster_messages_received_total") > 0);
        CHECK(value_of(page, "cluster_bytes_sent_total") > 0);
        CHECK(value_of(page, "cluster_bytes_received_total") > 0);
        std::uint64_t handed = 0;
        for (const auto& w : s.workers) {
            const std::string label = "{worker=\"" + std::to_string(w.id) + "\"}";
            INFO("worker " << w.id);
            CHECK(value_of(page, "cluster_worker_rss_bytes" + label) > 0);
            CHECK(value_of(page, "cluster_connections_handed_total" + label) ==
                  static_cast<double>(w.counts.connections_handed));
            handed += w.counts.connections_handed;
            for (const char* name : {"cluster_worker_heartbeat_rtt_seconds", "cluster_worker_messages_sent_total",
                                     "cluster_worker_messages_received_total", "cluster_worker_bytes_sent_total",
                                     "cluster_worker_bytes_received_total", "cluster_connections_refused_total",
                                     "cluster_worker_connections_open", "cluster_worker_connections_held",
                                     "cluster_worker_cpu_seconds_total", "cluster_worker_uptime_seconds"}) {
                INFO(name);
                CHECK(value_of(page, name + label) >= 0);
            }
        }
        CHECK(value_of(page, "cluster_worker_rss_bytes{worker=\"1\"}") == -1);  // gone: only in the totals
        CHECK(handed <= 3);
        check_with_promtool(page);
    });
}

TEST_CASE("metrics endpoint: other paths are 404, other methods 405, garbage 400, a huge head 431") {
    support::with_primary(exported(), [](primary<proto>& p) -> task<void> {
        const endpoint at = p.metrics_endpoint();
        auto other = co_await exchange(at, "GET /other HTTP/1.1\r\n\r\n");
        CHECK(other.starts_with("HTTP/1.1 404 Not Found\r\n"));
        auto query = co_await exchange(at, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        CHECK(query.starts_with("HTTP/1.1 200 OK\r\n"));
        auto post = co_await exchange(at, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        CHECK(post.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        CHECK(post.find("\r\nAllow: GET\r\n") != std::string::npos);
        auto garbage = co_await exchange(at, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 15));
        CHECK(garbage.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        auto no_version = co_await exchange(at, "GET /metrics\r\n\r\n");
        CHECK(no_version.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        auto bad_header = co_await exchange(at, "GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n");
        CHECK(bad_header.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        const std::string huge =
            "GET /metrics HTTP/1.1\r\nX-Big: " + std::string(detail::max_scrape_head, 'a') + "\r\n\r\n";
        auto too_long = co_await exchange(at, huge);
        CHECK(too_long.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        // None of it hurt: the page is served as before.
        auto again = co_await exchange(at, get_metrics);
        CHECK(again.starts_with("HTTP/1.1 200 OK\r\n"));
    });
}

TEST_CASE("metrics endpoint: a request never finished is closed after the bound, unanswered") {
    support::with_primary(exported(), [](primary<proto>& p) -> task<void> {
        const endpoint at = p.metrics_endpoint();
        auto s = co_await support::dial(at);
        REQUIRE(s.has_value());
        const std::string part = "GET /metrics HTTP/1.1\r\nHost: slow";
        REQUIRE((co_await s->write(std::span(part.data(), part.size()))).has_value());
        const auto began = std::chrono::steady_clock::now();
        const bool closed = co_await support::closed_by_peer(*s, detail::scrape_request_time + 3s);
        CHECK(closed);
        CHECK(std::chrono::steady_clock::now() - began >= detail::scrape_request_time - 100ms);
    });
}

TEST_CASE("metrics endpoint: past max_scrapes clients are closed at once, and supervision goes on on time") {
    support::with_primary(exported(), [](primary<proto>& p) -> task<void> {
        const endpoint at = p.metrics_endpoint();
        (void)co_await support::start_listening(p, 1);
        std::vector<tcp_stream> idle;
        for (int i = 0; i < 100; ++i) {
            auto s = co_await support::dial(at);
            REQUIRE(s.has_value());
            idle.push_back(std::move(*s));
        }
        // The clients past the first max_scrapes are closed without waiting for the bound.
        std::size_t closed_soon = 0;
        for (std::size_t i = detail::max_scrapes; i < idle.size(); ++i)
            if (co_await support::closed_by_peer(idle[i], 2s)) ++closed_soon;
        CHECK(closed_soon == idle.size() - detail::max_scrapes);

        // A crash meanwhile is restarted as ever.
        const auto crashed_at = std::chrono::steady_clock::now();
        REQUIRE(p.worker(1));
        (void)p.worker(1)->kill(SIGKILL);
        (void)co_await bounded(p.next<exit_event>());
        (void)co_await support::listening(p);
        CHECK(std::chrono::steady_clock::now() - crashed_at < 2s);

        // Once the idle ones are closed for their silence, scrapes are served again.
        for (std::size_t i = 0; i < detail::max_scrapes; ++i)
            CHECK(co_await support::closed_by_peer(idle[i], detail::scrape_request_time + 3s));
        auto page = co_await exchange(at, get_metrics);
        CHECK(page.starts_with("HTTP/1.1 200 OK\r\n"));
        CHECK(p.status().restarts == 1);
    });
}

TEST_CASE("metrics endpoint: an address that cannot be listened on stops the primary from starting, saying which") {
    io_context ctx;
    primary_options o;
    o.metrics = endpoint("unix:/nonexistent-dir/metrics.sock");
    try {
        primary<proto> p(o, support::worker_main);
        FAIL("the primary started");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("metrics endpoint unix:/nonexistent-dir/metrics.sock") != std::string::npos);
    }
}

namespace {

// Scrapes until `series` has `value`: the workers report with their heartbeats, and the
// primary's status changes with each report.
task<std::string> page_once(primary<proto>& p, endpoint at, const std::string& series, double value) {
    for (;;) {
        const auto page = body_of(co_await exchange(at, get_metrics));
        if (value_of(page, series) == value) co_return page;
        auto changed = co_await support::bounded(p.status_changed());
        REQUIRE(changed.has_value());
    }
}

task<void> counted(primary<proto>& p, worker_handle<proto>& h, const std::string& text) {
    const support::command c{text};
    auto sent = co_await h.send(c);
    REQUIRE(sent.has_value());
    for (;;) {
        auto m = co_await p.next_message<support::note>();
        if (m.value.text == "counted " + text) co_return;
    }
}

}  // namespace

TEST_CASE("metrics endpoint: the workers' own metrics are combined, and a worker's counts stay when it leaves") {
    auto o = support::scripted(start_mode::fork, support::behaviour::count_commands);
    o.heartbeat_timeout = 200ms;  // a report every 50 ms
    o.metrics = endpoint("127.0.0.1:0");
    support::with_primary(std::move(o), [](primary<proto>& p) -> task<void> {
        const endpoint at = p.metrics_endpoint();
        auto& a = co_await support::fork_worker(p);
        auto& b = co_await support::fork_worker(p);
        for (auto* h : {&a, &a, &b}) co_await bounded(counted(p, *h, "go"));
        co_await bounded(counted(p, b, "stop"));
        auto page = co_await bounded(page_once(p, at, "app_commands_total{text=\"go\"}", 3));
        CHECK(page_has_line(page, "# TYPE app_commands_total counter"));
        CHECK(page_has_line(page, "app_commands_total{text=\"stop\"} 1"));
        CHECK(page_has_line(page, "app_last_length 6"));  // summed over the live workers: 2 + 4
        CHECK(page_has_line(page, "app_command_bytes_count 4"));
        CHECK(page_has_line(page, "app_command_bytes_bucket{le=\"4\"} 4"));
        CHECK(page_has_line(page, "app_command_bytes_sum 10"));
        CHECK(page_has_line(page, "cluster_workers 2"));  // the built-ins come first, as before
        check_with_promtool(page);

        // a leaves with its last counts (sent as it goes, not at the next heartbeat); b counts on.
        co_await bounded(counted(p, a, "late"));
        auto left = co_await bounded(a.disconnect());
        REQUIRE(left.has_value());
        (void)co_await bounded(p.next<exit_event>());
        co_await bounded(counted(p, b, "go"));
        page = co_await bounded(page_once(p, at, "app_commands_total{text=\"go\"}", 4));
        CHECK(page_has_line(page, "app_commands_total{text=\"late\"} 1"));
        CHECK(page_has_line(page, "app_command_bytes_count 6"));
        CHECK(page_has_line(page, "app_last_length 2"));  // a's gauge went with it
        check_with_promtool(page);
    });
}
