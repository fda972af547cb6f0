// cluster::metrics family: a metric family's series, one per set of label values, each made on
// first use and kept where it is for the user to cache; bounded, and read whole as a snapshot.
#pragma once

#include <cluster/detail/utf8.hpp>
#include <cluster/metrics/definition.hpp>
#include <cluster/metrics/snapshot.hpp>

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace cluster::metrics {

// The most series one family holds: a label fed from user input (a path, a client) would
// otherwise grow the worker's memory, and every scrape, without end.
inline constexpr std::size_t max_series_per_family = 10'000;

// What a registry keeps of every family, whatever its type.
class family_base {
public:
    family_base(const family_base&) = delete;
    family_base& operator=(const family_base&) = delete;
    virtual ~family_base() = default;

    [[nodiscard]] const family_definition& definition() const noexcept { return definition_; }
    [[nodiscard]] virtual family_snapshot snapshot() const = 0;

protected:
    explicit family_base(family_definition d) : definition_(std::move(d)) {}

private:
    family_definition definition_;
};

namespace detail {

// Orders label value lists, stored (strings) or looked up (string_views), without a copy.
struct labels_less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
        return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                            [](std::string_view x, std::string_view y) { return x < y; });
    }
};

}  // namespace detail

// Series is counter, gauge or histogram: constructed from the family's definition, with a
// read_into(series_snapshot&) const.
template <class Series>
class family final : public family_base {
public:
    explicit family(family_definition d) : family_base(std::move(d)) {}

    // The series of these label values, in the order of the label names; made on first use.
    // Cache the reference: this takes a lock and a lookup, the series' updates neither. Values
    // are free text; bytes that are not UTF-8 are replaced (U+FFFD), as a scrape would show them.
    Series& with(std::span<const std::string_view> label_values) {
        if (label_values.size() != definition().label_names.size())
            throw std::invalid_argument("metric family '" + definition().name + "' has " +
                                        std::to_string(definition().label_names.size()) + " labels, given " +
                                        std::to_string(label_values.size()) + " values");
        if (std::all_of(label_values.begin(), label_values.end(), cluster::detail::valid_utf8))
            return find_or_add(label_values);
        std::vector<std::string> replaced(label_values.size());
        for (std::size_t i = 0; i < label_values.size(); ++i)
            cluster::detail::append_utf8_replacing(replaced[i], label_values[i]);
        const std::vector<std::string_view> views(replaced.begin(), replaced.end());
        return find_or_add(views);
    }
    Series& with(std::initializer_list<std::string_view> label_values) {
        return with(std::span<const std::string_view>(label_values.begin(), label_values.size()));
    }

    [[nodiscard]] std::size_t size() const {
        std::lock_guard lock(mutex_);
        return series_.size();
    }

    [[nodiscard]] family_snapshot snapshot() const override {
        family_snapshot out{definition(), {}};
        std::lock_guard lock(mutex_);
        out.series.reserve(series_.size());
        for (const auto& [labels, series] : series_) {
            auto& s = out.series.emplace_back();
            s.labels = labels;
            series.read_into(s);
        }
        return out;
    }

private:
    Series& find_or_add(std::span<const std::string_view> values) {
        std::lock_guard lock(mutex_);
        if (const auto it = series_.find(values); it != series_.end()) return it->second;
        if (series_.size() >= max_series_per_family)
            throw std::length_error("metric family '" + definition().name + "' has " +
                                    std::to_string(max_series_per_family) +
                                    " series already, the most one family holds: are its labels fed from "
                                    "unbounded input?");
        return series_
            .emplace(std::piecewise_construct, std::forward_as_tuple(values.begin(), values.end()),
                     std::forward_as_tuple(definition()))
            .first->second;
    }

    mutable std::mutex mutex_;
    // A map's nodes stay where they are: the references with() hands out stay good.
    std::map<std::vector<std::string>, Series, detail::labels_less> series_;
};

}  // namespace cluster::metrics
