// cluster::metrics registry: families checked at definition (std::invalid_argument naming the
// problem), defined once, bounded in number, and snapshotted in the order defined.
#include <catch2/catch.hpp>

#include <cluster/metrics/registry.hpp>

#include <limits>
#include <stdexcept>
#include <string>

using namespace cluster::metrics;

TEST_CASE("registry: a definition that breaks a rule throws invalid_argument saying which") {
    registry r;
    CHECK_THROWS_WITH(r.counter("bad name_total", "X."), Catch::Contains("not a valid metric name"));
    CHECK_THROWS_WITH(r.counter("cluster_restarts_total", "X."), Catch::Contains("cluster's own"));
    CHECK_THROWS_WITH(r.counter("jobs", "Jobs."), Catch::Contains("ends in _total"));
    CHECK_THROWS_WITH(r.gauge("depth", "Depth.", {"q", "q"}), Catch::Contains("'q' is named twice"));
    CHECK_THROWS_WITH(r.gauge("depth", "Depth.", {"a-b"}), Catch::Contains("'a-b' is not a valid label name"));
    CHECK_THROWS_WITH(r.histogram("latency_seconds", "Latency.", {"le"}, {1}), Catch::Contains("'le'"));
    CHECK_THROWS_WITH(r.histogram("latency_seconds", "Latency.", {}, {2, 1}), Catch::Contains("ascending"));
    CHECK_THROWS_WITH(r.histogram("latency_seconds", "Latency.", {}, {std::numeric_limits<double>::quiet_NaN()}),
                      Catch::Contains("NaN"));
    CHECK_THROWS_AS(r.counter("", "X."), std::invalid_argument);
    CHECK(r.snapshot().families.empty());
}

TEST_CASE("registry: defining a family again returns it (help aside), and defining it otherwise throws") {
    registry r;
    auto& f = r.counter("jobs_total", "Jobs.", {"kind"});
    CHECK(&r.counter("jobs_total", "Jobs, said otherwise.", {"kind"}) == &f);
    CHECK_THROWS_WITH(r.counter("jobs_total", "Jobs.", {"type"}),
                      "metric family 'jobs_total' is defined already, as counter{kind}, not counter{type}");
    r.histogram("latency_seconds", "Latency.", {}, {0.1, 1});
    CHECK_THROWS_WITH(r.histogram("latency_seconds", "Latency.", {}, {0.1, 2}),
                      Catch::Contains("as histogram{} buckets [0.1, 1], not histogram{} buckets [0.1, 2]"));
    r.gauge("depth", "Depth.");
    CHECK_THROWS_WITH(r.histogram("depth", "Depth.", {}, {}), Catch::Contains("as gauge{}, not histogram{}"));
    CHECK(r.snapshot().families.size() == 3);
}

TEST_CASE("registry: past max_families a new family throws length_error") {
    registry r;
    for (std::size_t i = 0; i < max_families; ++i) r.gauge("g" + std::to_string(i), "G.");
    CHECK_THROWS_AS(r.gauge("one_more", "G."), std::length_error);
    CHECK(&r.gauge("g0", "G.") == &r.gauge("g0", "G."));
}

TEST_CASE("registry: a snapshot holds every family in the order defined, with its values") {
    registry r;
    r.gauge("depth", "Depth.").with({}).set(3);
    r.counter("jobs_total", "Jobs.", {"kind"}).with({"mail"}).inc(2);
    r.histogram("latency_seconds", "Latency.", {}, {1}).with({}).observe(0.5);
    const auto s = r.snapshot();
    REQUIRE(s.families.size() == 3);
    CHECK(s.families[0].definition.name == "depth");
    CHECK(s.families[0].series.at(0).value == 3);
    CHECK(s.families[1].definition.name == "jobs_total");
    CHECK(s.families[1].series.at(0).labels == std::vector<std::string>{"mail"});
    CHECK(s.families[1].series.at(0).counts == std::vector<std::uint64_t>{2});
    CHECK(s.families[2].series.at(0).counts == std::vector<std::uint64_t>{1, 0});
}

TEST_CASE("registry: global() is one registry for the whole process") {
    auto& jobs = registry::global().counter("registry_test_jobs_total", "Jobs.");
    CHECK(&registry::global() == &registry::global());
    CHECK(&registry::global().counter("registry_test_jobs_total", "Jobs.") == &jobs);
}
