// cluster::metrics aggregate: workers' snapshots combined into one page — counters and
// histograms across live and retired workers, gauges across live ones — conflicting and
// invalid families skipped, oversized snapshots refused, and the page accepted by promtool.
#include <catch2/catch.hpp>

#include <cluster/metrics/aggregate.hpp>

#include <string>

#include "support/promtool.hpp"

using namespace cluster::metrics;

namespace {

std::string page_of(const aggregate& a) {
    std::string page;
    text_writer w(page);
    a.render(w);
    return page;
}

}  // namespace

TEST_CASE("aggregate: counters are summed across workers per label set") {
    registry w1, w2;
    w1.counter("jobs_total", "Jobs.", {"kind"}).with({"mail"}).inc(2);
    w2.counter("jobs_total", "Jobs.", {"kind"}).with({"mail"}).inc(3);
    w2.counter("jobs_total", "Jobs.", {"kind"}).with({"sms"}).inc(1);
    aggregate a;
    CHECK(a.update(1, w1.snapshot()).accepted);
    CHECK(a.update(2, w2.snapshot()).accepted);
    CHECK(a.workers() == 2);
    CHECK(page_of(a) == "# HELP jobs_total Jobs.\n"
                        "# TYPE jobs_total counter\n"
                        "jobs_total{kind=\"mail\"} 5\n"
                        "jobs_total{kind=\"sms\"} 1\n");
}

TEST_CASE("aggregate: a later snapshot replaces the worker's earlier one") {
    registry w;
    auto& c = w.counter("jobs_total", "Jobs.").with({});
    aggregate a;
    c.inc(2);
    a.update(1, w.snapshot());
    c.inc(2);
    a.update(1, w.snapshot());
    CHECK(page_of(a) == "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 4\n");
}

TEST_CASE("aggregate: a retired worker's counters stay in the totals, which never go down") {
    registry w1, w2;
    w1.counter("jobs_total", "Jobs.").with({}).inc(5);
    aggregate a;
    a.update(1, w1.snapshot());
    a.retire(1);
    CHECK(a.workers() == 0);
    CHECK(page_of(a) == "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 5\n");
    w2.counter("jobs_total", "Jobs.").with({}).inc(3);
    a.update(2, w2.snapshot());
    CHECK(page_of(a) == "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 8\n");
    a.retire(2);
    a.retire(2);
    CHECK(page_of(a) == "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 8\n");
}

TEST_CASE("aggregate: gauges are summed across live workers, and a retired worker's vanish") {
    registry w1, w2;
    w1.gauge("in_flight", "Requests in flight.").with({}).set(2);
    w2.gauge("in_flight", "Requests in flight.").with({}).set(1.5);
    aggregate a;
    a.update(1, w1.snapshot());
    a.update(2, w2.snapshot());
    CHECK(page_of(a) == "# HELP in_flight Requests in flight.\n# TYPE in_flight gauge\nin_flight 3.5\n");
    a.retire(1);
    CHECK(page_of(a) == "# HELP in_flight Requests in flight.\n# TYPE in_flight gauge\nin_flight 1.5\n");
    a.retire(2);
    CHECK(page_of(a).empty());
}

TEST_CASE("aggregate: histograms are summed bucket by bucket, cumulative on the page, retired ones kept") {
    registry w1, w2;
    auto& h1 = w1.histogram("latency_seconds", "Latency.", {"route"}, {0.1, 1}).with({"/"});
    auto& h2 = w2.histogram("latency_seconds", "Latency.", {"route"}, {0.1, 1}).with({"/"});
    h1.observe(0.05);
    h1.observe(0.5);
    h2.observe(2);
    aggregate a;
    a.update(1, w1.snapshot());
    a.retire(1);
    a.update(2, w2.snapshot());
    CHECK(page_of(a) == "# HELP latency_seconds Latency.\n"
                        "# TYPE latency_seconds histogram\n"
                        "latency_seconds_bucket{route=\"/\",le=\"0.1\"} 1\n"
                        "latency_seconds_bucket{route=\"/\",le=\"1\"} 2\n"
                        "latency_seconds_bucket{route=\"/\",le=\"+Inf\"} 3\n"
                        "latency_seconds_sum{route=\"/\"} 2.55\n"
                        "latency_seconds_count{route=\"/\"} 3\n");
}

TEST_CASE("aggregate: a family defined otherwise by another worker is skipped and counted, the first kept") {
    registry old_build, new_build;
    old_build.counter("jobs_total", "Jobs.", {"kind"}).with({"mail"}).inc(1);
    new_build.counter("jobs_total", "Jobs.", {"type"}).with({"mail"}).inc(10);
    new_build.gauge("depth", "Depth.").with({}).set(4);
    aggregate a;
    a.update(1, old_build.snapshot());
    const auto result = a.update(2, new_build.snapshot());
    CHECK(result.accepted);
    REQUIRE(result.skipped.size() == 1);
    CHECK(result.skipped[0] == "metric family 'jobs_total' is counter{kind} by the first worker that reported it, "
                               "counter{type} by this one");
    CHECK(a.families_skipped() == 1);
    CHECK(page_of(a) == "# HELP depth Depth.\n# TYPE depth gauge\ndepth 4\n"
                        "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{kind=\"mail\"} 1\n");
}

TEST_CASE("aggregate: once no live worker reports a family, another definition replaces it and its totals") {
    registry old_build, new_build;
    old_build.counter("jobs_total", "Jobs.", {"kind"}).with({"mail"}).inc(5);
    new_build.counter("jobs_total", "Jobs.", {"kind", "queue"}).with({"mail", "fast"}).inc(2);
    aggregate a;
    a.update(1, old_build.snapshot());
    CHECK(a.update(2, new_build.snapshot()).skipped.size() == 1);
    a.retire(1);
    CHECK(page_of(a) == "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{kind=\"mail\"} 5\n");
    CHECK(a.update(2, new_build.snapshot()).skipped.empty());
    CHECK(page_of(a) ==
          "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{kind=\"mail\",queue=\"fast\"} 2\n");
    CHECK(a.update(1, old_build.snapshot()).skipped.size() == 1);
}

TEST_CASE("aggregate: a family that breaks a rule or does not match its own definition is skipped") {
    const auto family = [](std::string name, metric_type type, std::vector<std::string> labels,
                           std::vector<series_snapshot> series) {
        return family_snapshot{{std::move(name), "Help.", type, std::move(labels), {}}, std::move(series)};
    };
    registry_snapshot s{{
        family("cluster_workers", metric_type::gauge, {}, {{{}, {}, 1}}),
        family("bad name", metric_type::gauge, {}, {{{}, {}, 1}}),
        family("x_total", metric_type::counter, {"a"}, {{{}, {1}, 0}}),
        family("y_total", metric_type::counter, {}, {{{}, {1, 2}, 0}}),
        family("z", metric_type::gauge, {"a"}, {{{"\xFF"}, {}, 1}}),
        family("ok_total", metric_type::counter, {}, {{{}, {7}, 0}}),
        family("ok_total", metric_type::counter, {}, {{{}, {8}, 0}}),
    }};
    aggregate a;
    const auto result = a.update(1, s);
    CHECK(result.accepted);
    REQUIRE(result.skipped.size() == 6);
    CHECK_THAT(result.skipped[0], Catch::Contains("cluster's own"));
    CHECK_THAT(result.skipped[1], Catch::Contains("not a valid metric name"));
    CHECK_THAT(result.skipped[2], Catch::Contains("wrong number of label values"));
    CHECK_THAT(result.skipped[3], Catch::Contains("wrong number of counts"));
    CHECK_THAT(result.skipped[4], Catch::Contains("not UTF-8"));
    CHECK_THAT(result.skipped[5], Catch::Contains("reported twice"));
    CHECK(page_of(a) == "# HELP ok_total Help.\n# TYPE ok_total counter\nok_total 7\n");
}

TEST_CASE("aggregate: a snapshot past a limit is refused whole, and the worker's previous one stands") {
    registry w;
    auto& by_user = w.counter("by_user_total", "Per user.", {"user"});
    by_user.with({"a"}).inc();
    aggregate a({.families = 10, .series = 3, .bytes = 4096, .retired_series = 10});
    CHECK(a.update(1, w.snapshot()).accepted);
    for (const char* user : {"b", "c", "d"}) by_user.with({user}).inc();
    auto result = a.update(1, w.snapshot());
    CHECK_FALSE(result.accepted);
    CHECK(result.refusal == "4 series, past the limit of 3");
    CHECK(a.snapshots_refused() == 1);
    CHECK(page_of(a) == "# HELP by_user_total Per user.\n# TYPE by_user_total counter\nby_user_total{user=\"a\"} 1\n");

    registry big;
    big.counter("big_total", std::string(5000, 'h')).with({}).inc();
    CHECK_THAT(a.update(2, big.snapshot()).refusal, Catch::EndsWith("bytes, past the limit of 4096"));
    registry many;
    for (int i = 0; i < 11; ++i) many.gauge("g" + std::to_string(i), "G.");
    CHECK(a.update(3, many.snapshot()).refusal == "11 families, past the limit of 10");
    CHECK(a.workers() == 1);
}

TEST_CASE("aggregate: retired label sets past their bound are dropped and counted") {
    aggregate a({.retired_series = 2});
    for (unsigned worker = 1; worker <= 3; ++worker) {
        registry w;
        w.counter("by_user_total", "Per user.", {"user"}).with({"u" + std::to_string(worker)}).inc();
        a.update(worker, w.snapshot());
        a.retire(worker);
    }
    CHECK(a.retired_series_dropped() == 1);
    CHECK(page_of(a) == "# HELP by_user_total Per user.\n# TYPE by_user_total counter\n"
                        "by_user_total{user=\"u1\"} 1\nby_user_total{user=\"u2\"} 1\n");
}

TEST_CASE("aggregate: a page of every type from several workers, with awkward label values, passes promtool") {
    aggregate a;
    for (unsigned worker = 1; worker <= 3; ++worker) {
        registry w;
        w.counter("http_requests_total", "HTTP requests, by method and code.", {"method", "code"})
            .with({"GET", std::to_string(200 + worker)})
            .inc(worker);
        w.gauge("queue_depth", "Jobs waiting, with a \\ and a\nnewline in the help.", {"queue"})
            .with({"a \"quoted\"\nvalue\\"})
            .set(worker * 0.5);
        auto& h = w.histogram("request_duration_seconds", "Request duration.", {"route"}, {0.005, 0.1, 1, 1e6});
        h.with({"/caf\xC3\xA9"}).observe(0.05 * worker);
        h.with({"/bad\xFF"}).observe(2);
        a.update(worker, w.snapshot());
        if (worker == 2) a.retire(worker);
    }
    const auto page = page_of(a);
    CHECK_THAT(page, Catch::Contains("http_requests_total{method=\"GET\",code=\"202\"} 2\n"));
    CHECK_THAT(page, Catch::Contains("queue_depth{queue=\"a \\\"quoted\\\"\\nvalue\\\\\"} 2\n"));
    CHECK_THAT(page, Catch::Contains("request_duration_seconds_bucket{route=\"/bad\xEF\xBF\xBD\",le=\"1e+06\"} 3\n"));
    const auto verdict = support::promtool_check(page);
    if (!verdict) {
        WARN("skipped promtool: not installed (Debian's prometheus package)");
        return;
    }
    INFO(page);
    INFO(verdict->said);
    CHECK(verdict->accepted);
}
