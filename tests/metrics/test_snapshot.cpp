// cluster::metrics snapshot: a registry's snapshot travels through the wire codec as a worker
// sends it, and comes out the same, doubles bit for bit.
#include <catch2/catch.hpp>

#include <cluster/metrics/registry.hpp>
#include <cluster/metrics/snapshot.hpp>
#include <cluster/wire/codec.hpp>

#include <bit>
#include <cstring>
#include <limits>

using namespace cluster::metrics;

namespace {

bool same(const family_definition& a, const family_definition& b) { return same_family(a, b) && a.help == b.help; }

bool same(const series_snapshot& a, const series_snapshot& b) {
    return a.labels == b.labels && a.counts == b.counts &&
           std::bit_cast<std::uint64_t>(a.value) == std::bit_cast<std::uint64_t>(b.value);
}

}  // namespace

TEST_CASE("snapshot: a registry's snapshot encodes and decodes with the wire codec unchanged") {
    registry r;
    r.counter("requests_total", "Requests.", {"method", "code"}).with({"GET", "200"}).inc(41);
    r.gauge("temperature_celsius", "Temperature.").with({}).set(-0.1);
    r.gauge("weird", "NaN gauge.").with({}).set(std::numeric_limits<double>::quiet_NaN());
    auto& h = r.histogram("latency_seconds", "Latency \"quoted\".", {"route"}, {0.005, 0.25, 1});
    h.with({"/a\nb"}).observe(0.2);
    h.with({"/"}).observe(3);
    const auto sent = r.snapshot();

    cluster::wire::buffer bytes;
    cluster::wire::encode(sent, bytes);
    CHECK(bytes.size() == cluster::wire::encoded_size(sent));
    const auto received = cluster::wire::decode<registry_snapshot>(bytes.bytes());
    REQUIRE(received.has_value());
    REQUIRE(received->families.size() == sent.families.size());
    for (std::size_t i = 0; i < sent.families.size(); ++i) {
        const auto& a = sent.families[i];
        const auto& b = received->families[i];
        CHECK(same(a.definition, b.definition));
        REQUIRE(a.series.size() == b.series.size());
        for (std::size_t j = 0; j < a.series.size(); ++j) CHECK(same(a.series[j], b.series[j]));
    }
}

TEST_CASE("snapshot: a type that is no metric_type does not decode") {
    registry_snapshot s{{family_snapshot{{"x_total", "X.", metric_type::counter, {}, {}}, {}}}};
    cluster::wire::buffer bytes;
    cluster::wire::encode(s, bytes);
    // The type follows the name and help, each a u32 length and its bytes.
    const std::size_t type_at = 4 + 4 + 7 + 4 + 2;
    const int not_a_type = 9;
    std::memcpy(bytes.data() + type_at, &not_a_type, sizeof not_a_type);
    const auto received = cluster::wire::decode<registry_snapshot>(bytes.bytes());
    REQUIRE_FALSE(received.has_value());
    CHECK(received.error() == cluster::errc::invalid_enum);
}

TEST_CASE("snapshot: a series carries one count for a counter, one per bucket and +Inf for a histogram") {
    CHECK(counts_per_series({"a_total", "A.", metric_type::counter, {}, {}}) == 1);
    CHECK(counts_per_series({"a", "A.", metric_type::gauge, {}, {}}) == 0);
    CHECK(counts_per_series({"a", "A.", metric_type::histogram, {}, {1, 2, 3}}) == 4);
}
