// cluster::metrics family: one series per set of label values, kept where it is; the right
// number of values, UTF-8 values, and a bound on how many series.
#include <catch2/catch.hpp>

#include <cluster/metrics/registry.hpp>

#include <stdexcept>
#include <string>
#include <vector>

using namespace cluster::metrics;

TEST_CASE("family: with() makes a series once and hands back the same one after") {
    registry r;
    auto& f = r.counter("hits_total", "Hits.", {"page"});
    auto& home = f.with({"/"});
    for (int i = 0; i < 100; ++i) f.with({"/p" + std::to_string(i)});
    CHECK(&f.with({"/"}) == &home);
    const std::vector<std::string_view> values{"/"};
    CHECK(&f.with(values) == &home);
    CHECK(f.size() == 101);
}

TEST_CASE("family: the wrong number of label values is refused, naming the family") {
    registry r;
    auto& f = r.counter("hits_total", "Hits.", {"page", "code"});
    CHECK_THROWS_WITH(f.with({"/"}), "metric family 'hits_total' has 2 labels, given 1 values");
    CHECK_THROWS_AS(f.with({"/", "200", "x"}), std::invalid_argument);
    CHECK(f.size() == 0);
}

TEST_CASE("family: label values are free text, and bytes that are not UTF-8 are replaced") {
    registry r;
    auto& f = r.counter("hits_total", "Hits.", {"page"});
    f.with({"a \"quoted\"\npage\\"}).inc();
    auto& replaced = f.with({"x\xFFy"});
    CHECK(&f.with({"x\xFEy"}) == &replaced);
    const auto s = f.snapshot();
    REQUIRE(s.series.size() == 2);
    CHECK(s.series[0].labels == std::vector<std::string>{"a \"quoted\"\npage\\"});
    CHECK(s.series[1].labels == std::vector<std::string>{"x\xEF\xBF\xBDy"});
}

TEST_CASE("family: past max_series_per_family a new series is refused, and the others go on") {
    registry r;
    auto& f = r.counter("by_user_total", "Per user.", {"user"});
    for (std::size_t i = 0; i < max_series_per_family; ++i) f.with({std::to_string(i)});
    CHECK_THROWS_AS(f.with({"one more"}), std::length_error);
    CHECK_THROWS_WITH(f.with({"one more"}), Catch::Contains("by_user_total") && Catch::Contains("10000 series"));
    f.with({"0"}).inc();
    CHECK(f.with({"0"}).value() == 1);
    CHECK(f.size() == max_series_per_family);
}

TEST_CASE("family: a snapshot holds the definition and every series, by label values") {
    registry r;
    auto& f = r.gauge("depth", "Depth.", {"queue"});
    f.with({"b"}).set(2);
    f.with({"a"}).set(1);
    const auto s = f.snapshot();
    CHECK(s.definition.name == "depth");
    CHECK(s.definition.type == metric_type::gauge);
    REQUIRE(s.series.size() == 2);
    CHECK(s.series[0].labels == std::vector<std::string>{"a"});
    CHECK(s.series[0].value == 1);
    CHECK(s.series[1].labels == std::vector<std::string>{"b"});
    CHECK(s.series[1].value == 2);
}
