// cluster::metrics snapshot: every family of a registry, defined and valued at one moment — the
// message a worker sends its primary, in the wire codec's terms (described structs, vectors).
#pragma once

#include <cluster/metrics/definition.hpp>

#include <boost/describe/class.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace cluster::metrics {

// One series: one set of label values of a family. What counts and value hold is the type's:
//   counter    counts {the count}           value 0
//   gauge      counts {}                    value the gauge's
//   histogram  counts each bucket's own     value the sum observed
//              (not cumulative), +Inf last
// A histogram's count is its buckets' total, so the +Inf bucket always equals it.
struct series_snapshot {
    std::vector<std::string> labels;  // values, in the order of the family's label names
    std::vector<std::uint64_t> counts;
    double value = 0;
};
BOOST_DESCRIBE_STRUCT(series_snapshot, (), (labels, counts, value))

struct family_snapshot {
    family_definition definition;
    std::vector<series_snapshot> series;
};
BOOST_DESCRIBE_STRUCT(family_snapshot, (), (definition, series))

struct registry_snapshot {
    std::vector<family_snapshot> families;
};
BOOST_DESCRIBE_STRUCT(registry_snapshot, (), (families))

// How many counts a series of d carries (see series_snapshot).
inline std::size_t counts_per_series(const family_definition& d) noexcept {
    switch (d.type) {
    case metric_type::counter: return 1;
    case metric_type::histogram: return d.buckets.size() + 1;
    case metric_type::gauge:
    case metric_type::untyped: return 0;
    }
    return 0;
}

}  // namespace cluster::metrics
