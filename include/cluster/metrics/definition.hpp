// cluster::metrics definition: what defines a metric family (name, help, type, label names,
// histogram buckets), the rules a definition keeps, and when two definitions are the same family.
#pragma once

#include <cluster/metrics/text_format.hpp>

#include <boost/describe/class.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

namespace cluster::metrics {

// The names of the cluster's built-in metrics, which the primary renders on the same page.
inline constexpr std::string_view reserved_prefix = "cluster_";

struct family_definition {
    std::string name;
    std::string help;
    metric_type type = metric_type::untyped;
    std::vector<std::string> label_names;
    std::vector<double> buckets;  // a histogram's upper bounds, finite and ascending; +Inf is implied
};
BOOST_DESCRIBE_STRUCT(family_definition, (), (name, help, type, label_names, buckets))

// Two definitions are one family when every sample would read the same: the help may differ.
inline bool same_family(const family_definition& a, const family_definition& b) noexcept {
    return a.name == b.name && a.type == b.type && a.label_names == b.label_names && a.buckets == b.buckets;
}

// A definition as a message names it: "histogram{route} buckets [0.1, 1]".
inline std::string shape(const family_definition& d) {
    std::string out = to_string(d.type);
    out += '{';
    for (std::size_t i = 0; i < d.label_names.size(); ++i) out.append(i ? "," : "").append(d.label_names[i]);
    out += '}';
    if (d.type != metric_type::histogram) return out;
    out += " buckets [";
    for (std::size_t i = 0; i < d.buckets.size(); ++i) {
        if (i) out += ", ";
        append_value(out, d.buckets[i]);
    }
    return out + ']';
}

namespace detail {

inline bool ends_with_any(std::string_view name, std::initializer_list<std::string_view> suffixes) {
    return std::any_of(suffixes.begin(), suffixes.end(), [&](std::string_view s) { return name.ends_with(s); });
}

// The suffixes say what a sample is: a counter's ends in _total, a histogram's samples in
// _bucket, _sum and _count. A family named against them would read as another type, or
// collide with a histogram's samples; promtool refuses the page.
inline std::string suffix_problem(const family_definition& d) {
    if (d.type == metric_type::counter) return d.name.ends_with("_total") ? "" : "a counter's name ends in _total";
    if (ends_with_any(d.name, {"_total", "_bucket", "_sum", "_count"}))
        return "only a counter's name ends in _total, and _bucket, _sum and _count are a histogram's samples";
    return {};
}

inline std::string label_problem(const family_definition& d) {
    for (std::size_t i = 0; i < d.label_names.size(); ++i) {
        const std::string& l = d.label_names[i];
        if (!valid_label_name(l))
            return "'" + l + "' is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)";
        if (d.type == metric_type::histogram && l == "le") return "the label 'le' is a histogram's bucket bound";
        if (std::find(d.label_names.begin(), d.label_names.begin() + static_cast<std::ptrdiff_t>(i), l) !=
            d.label_names.begin() + static_cast<std::ptrdiff_t>(i))
            return "the label '" + l + "' is named twice";
    }
    return {};
}

inline std::string bucket_problem(const family_definition& d) {
    if (d.type != metric_type::histogram) return d.buckets.empty() ? "" : "only a histogram has buckets";
    for (std::size_t i = 0; i < d.buckets.size(); ++i) {
        if (std::isnan(d.buckets[i])) return "a bucket bound is NaN";
        if (std::isinf(d.buckets[i])) return "bucket bounds are finite: +Inf is implied";
        if (i && !(d.buckets[i - 1] < d.buckets[i])) return "bucket bounds must be in strictly ascending order";
    }
    return {};
}

inline std::string rule_problem(const family_definition& d) {
    if (!valid_metric_name(d.name)) return "not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)";
    if (d.name.starts_with(reserved_prefix)) return "names beginning with cluster_ are the cluster's own metrics";
    if (d.type == metric_type::untyped) return "an application metric is a counter, a gauge or a histogram";
    if (d.help.empty()) return "the help is empty (say what it measures: promtool refuses a family without)";
    if (auto p = suffix_problem(d); !p.empty()) return p;
    if (auto p = label_problem(d); !p.empty()) return p;
    return bucket_problem(d);
}

}  // namespace detail

// What is wrong with d, in words that name the family; empty when nothing is. A registry
// throws it at definition; the primary's aggregate skips a worker's family that has one.
inline std::string definition_problem(const family_definition& d) {
    auto problem = detail::rule_problem(d);
    return problem.empty() ? problem : "metric family '" + d.name + "': " + problem;
}

}  // namespace cluster::metrics
