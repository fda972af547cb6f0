// cluster::metrics definition: the rules a family's definition keeps, each broken one named,
// and which definitions are the same family.
#include <catch2/catch.hpp>

#include <cluster/metrics/definition.hpp>

#include <limits>
#include <string>

using namespace cluster::metrics;

namespace {

family_definition counter_named(std::string name) {
    return {std::move(name), "Things done.", metric_type::counter, {}, {}};
}

family_definition histogram_with(std::vector<std::string> labels, std::vector<double> buckets) {
    return {"latency_seconds", "Latency.", metric_type::histogram, std::move(labels), std::move(buckets)};
}

}  // namespace

TEST_CASE("definition: a definition that keeps the rules has no problem") {
    CHECK(definition_problem(counter_named("jobs_total")).empty());
    CHECK(definition_problem({"queue_depth", "Jobs waiting.", metric_type::gauge, {"queue"}, {}}).empty());
    CHECK(definition_problem(histogram_with({"route", "method"}, {0.005, 0.1, 1, 10})).empty());
    CHECK(definition_problem(histogram_with({}, {})).empty());
}

TEST_CASE("definition: names are Prometheus's, and cluster_ is the cluster's own") {
    CHECK_THAT(definition_problem(counter_named("bad-name_total")),
               Catch::Contains("'bad-name_total'") && Catch::Contains("not a valid metric name"));
    CHECK_THAT(definition_problem(counter_named("")), Catch::Contains("not a valid metric name"));
    CHECK_THAT(definition_problem(counter_named("cluster_jobs_total")), Catch::Contains("cluster's own"));
}

TEST_CASE("definition: the type, the help and the name's suffix agree") {
    CHECK_THAT(definition_problem({"x", "X.", metric_type::untyped, {}, {}}), Catch::Contains("counter, a gauge"));
    CHECK_THAT(definition_problem({"x_total", "", metric_type::counter, {}, {}}), Catch::Contains("help is empty"));
    CHECK_THAT(definition_problem(counter_named("jobs")), Catch::Contains("ends in _total"));
    for (const char* name : {"depth_total", "depth_bucket", "depth_sum", "depth_count"}) {
        INFO(name);
        CHECK_THAT(definition_problem({name, "Depth.", metric_type::gauge, {}, {}}), Catch::Contains("_total"));
    }
}

TEST_CASE("definition: label names are valid, named once, and le is a histogram's") {
    CHECK_THAT(definition_problem(histogram_with({"bad label"}, {})),
               Catch::Contains("'bad label' is not a valid label name"));
    CHECK_THAT(definition_problem(histogram_with({"__name"}, {})), Catch::Contains("not a valid label name"));
    CHECK_THAT(definition_problem(histogram_with({"route", "route"}, {})), Catch::Contains("'route' is named twice"));
    CHECK_THAT(definition_problem(histogram_with({"le"}, {})), Catch::Contains("'le' is a histogram's bucket bound"));
    CHECK(definition_problem({"le_things_total", "Things.", metric_type::counter, {"le"}, {}}).empty());
}

TEST_CASE("definition: bucket bounds are finite and strictly ascending, and only a histogram's") {
    const double inf = std::numeric_limits<double>::infinity();
    CHECK_THAT(definition_problem(histogram_with({}, {1, std::numeric_limits<double>::quiet_NaN()})),
               Catch::Contains("NaN"));
    CHECK_THAT(definition_problem(histogram_with({}, {1, inf})), Catch::Contains("+Inf is implied"));
    CHECK_THAT(definition_problem(histogram_with({}, {1, 0.5})), Catch::Contains("strictly ascending"));
    CHECK_THAT(definition_problem(histogram_with({}, {1, 1})), Catch::Contains("strictly ascending"));
    CHECK_THAT(definition_problem({"jobs_total", "Jobs.", metric_type::counter, {}, {1}}),
               Catch::Contains("only a histogram has buckets"));
}

TEST_CASE("definition: the same family whatever its help, another if anything a sample reads differs") {
    const auto a = histogram_with({"route"}, {0.1, 1});
    auto other_help = a;
    other_help.help = "Said otherwise.";
    CHECK(same_family(a, other_help));
    CHECK_FALSE(same_family(a, histogram_with({"path"}, {0.1, 1})));
    CHECK_FALSE(same_family(a, histogram_with({"route"}, {0.1, 2})));
    auto as_gauge = a;
    as_gauge.type = metric_type::gauge;
    CHECK_FALSE(same_family(a, as_gauge));
    CHECK(shape(a) == "histogram{route} buckets [0.1, 1]");
    CHECK(shape(counter_named("jobs_total")) == "counter{}");
}
