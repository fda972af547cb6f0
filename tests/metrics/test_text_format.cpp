// cluster::metrics text format: names checked as Prometheus checks them, help and label values
// escaped (bytes that are not UTF-8 replaced), values in the format's spellings, and a page
// that promtool, Prometheus's own checker, accepts where Debian packages it.
#include <catch2/catch.hpp>

#include <cluster/metrics/text_format.hpp>

#include <limits>
#include <string>

#include "support/promtool.hpp"

using namespace cluster::metrics;

TEST_CASE("text format: metric and label names are valid exactly as Prometheus defines them") {
    CHECK(valid_metric_name("cluster_workers"));
    CHECK(valid_metric_name("a:b_c9"));
    CHECK(valid_metric_name(":recording_rule"));
    CHECK_FALSE(valid_metric_name(""));
    CHECK_FALSE(valid_metric_name("9lives"));
    CHECK_FALSE(valid_metric_name("has-dash"));
    CHECK_FALSE(valid_metric_name("sp ace"));
    CHECK_FALSE(valid_metric_name("caf\xC3\xA9"));
    CHECK(valid_label_name("worker"));
    CHECK(valid_label_name("_x1"));
    CHECK_FALSE(valid_label_name("__reserved"));
    CHECK_FALSE(valid_label_name("a:b"));
    CHECK_FALSE(valid_label_name("1a"));
    CHECK_FALSE(valid_label_name(""));
}

TEST_CASE("text format: label values and help are escaped, and bytes that are not UTF-8 are replaced") {
    std::string v;
    append_label_value(v, "a\\b\"c\nd");
    CHECK(v == "a\\\\b\\\"c\\nd");
    std::string bad;
    append_label_value(bad, "x\xFFy\xC3\xA9");
    CHECK(bad == "x\xEF\xBF\xBDy\xC3\xA9");
    std::string help;
    append_help(help, "line\none \"quoted\" \\");
    CHECK(help == "line\\none \"quoted\" \\\\");
}

TEST_CASE("text format: values are exact integers, shortest doubles, and +Inf, -Inf and NaN") {
    const auto text = [](auto v) {
        std::string s;
        append_value(s, v);
        return s;
    };
    CHECK(text(std::uint64_t{18446744073709551615u}) == "18446744073709551615");
    CHECK(text(0.25) == "0.25");
    CHECK(text(3.0) == "3");
    CHECK(text(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(text(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(text(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

TEST_CASE("text format: a page of families and samples reads as the format says, and promtool accepts it") {
    std::string page;
    text_writer w(page);
    w.family("cluster_workers", metric_type::gauge, "Workers alive.");
    w.sample("cluster_workers", {}, std::uint64_t{4});
    w.family("cluster_exits_total", metric_type::counter, "Worker exits, by reason.");
    w.sample("cluster_exits_total", {{"reason", "crash"}}, std::uint64_t{3});
    w.sample("cluster_exits_total", {{"reason", "odd \"one\"\n"}}, std::uint64_t{1});
    w.family("app_latency_seconds", metric_type::histogram, "Latency.");
    w.sample("app_latency_seconds_bucket", {{"route", "/"}, {"le", "0.1"}}, std::uint64_t{2});
    w.sample("app_latency_seconds_bucket", {{"route", "/"}, {"le", "+Inf"}}, std::uint64_t{3});
    w.sample("app_latency_seconds_sum", {{"route", "/"}}, 0.35);
    w.sample("app_latency_seconds_count", {{"route", "/"}}, std::uint64_t{3});
    CHECK(page == "# HELP cluster_workers Workers alive.\n"
                  "# TYPE cluster_workers gauge\n"
                  "cluster_workers 4\n"
                  "# HELP cluster_exits_total Worker exits, by reason.\n"
                  "# TYPE cluster_exits_total counter\n"
                  "cluster_exits_total{reason=\"crash\"} 3\n"
                  "cluster_exits_total{reason=\"odd \\\"one\\\"\\n\"} 1\n"
                  "# HELP app_latency_seconds Latency.\n"
                  "# TYPE app_latency_seconds histogram\n"
                  "app_latency_seconds_bucket{route=\"/\",le=\"0.1\"} 2\n"
                  "app_latency_seconds_bucket{route=\"/\",le=\"+Inf\"} 3\n"
                  "app_latency_seconds_sum{route=\"/\"} 0.35\n"
                  "app_latency_seconds_count{route=\"/\"} 3\n");
    const auto verdict = support::promtool_check(page);
    if (!verdict) {
        WARN("skipped promtool: not installed (Debian's prometheus package)");
        return;
    }
    INFO(verdict->said);
    CHECK(verdict->accepted);
}
