// cluster::metrics registry: a process's metric families, each defined once and checked as it
// is, and the snapshot of them all that a worker sends its primary.
#pragma once

#include <cluster/metrics/counter.hpp>
#include <cluster/metrics/definition.hpp>
#include <cluster/metrics/family.hpp>
#include <cluster/metrics/gauge.hpp>
#include <cluster/metrics/histogram.hpp>
#include <cluster/metrics/snapshot.hpp>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cluster::metrics {

// The most families one registry holds, and so one worker's snapshot (see aggregate_limits).
inline constexpr std::size_t max_families = 1'000;

// Defining a family takes a lock, and is meant for start-up; so is with(). A defined family
// lives as long as its registry, and a second definition of the same family (help aside)
// returns the first. Everything that breaks a rule throws std::invalid_argument, and a
// registry or family at its bound std::length_error, both with a message that says why.
class registry {
public:
    registry() = default;
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    // The process's own: where a worker's metrics live unless a test makes a registry of its own.
    static registry& global() {
        static registry process_registry;
        return process_registry;
    }

    counter_family& counter(std::string_view name, std::string_view help, std::vector<std::string> label_names = {}) {
        return define<metrics::counter>(
            {std::string(name), std::string(help), metric_type::counter, std::move(label_names), {}});
    }
    gauge_family& gauge(std::string_view name, std::string_view help, std::vector<std::string> label_names = {}) {
        return define<metrics::gauge>(
            {std::string(name), std::string(help), metric_type::gauge, std::move(label_names), {}});
    }
    // buckets: the upper bounds, finite and strictly ascending; +Inf is implied.
    histogram_family& histogram(std::string_view name, std::string_view help, std::vector<std::string> label_names,
                                std::vector<double> buckets) {
        return define<metrics::histogram>(
            {std::string(name), std::string(help), metric_type::histogram, std::move(label_names), std::move(buckets)});
    }

    // Every family in the order defined, each series' values as they are while it is read.
    [[nodiscard]] registry_snapshot snapshot() const {
        registry_snapshot out;
        std::lock_guard lock(mutex_);
        out.families.reserve(families_.size());
        for (const auto& f : families_) out.families.push_back(f->snapshot());
        return out;
    }

private:
    template <class Series>
    family<Series>& define(family_definition d) {
        if (auto problem = definition_problem(d); !problem.empty()) throw std::invalid_argument(problem);
        std::lock_guard lock(mutex_);
        const auto same_name = std::find_if(families_.begin(), families_.end(),
                                            [&](const auto& f) { return f->definition().name == d.name; });
        if (same_name != families_.end()) {
            const auto& defined = (*same_name)->definition();
            if (!same_family(defined, d))
                throw std::invalid_argument("metric family '" + d.name + "' is defined already, as " + shape(defined) +
                                            ", not " + shape(d));
            return static_cast<family<Series>&>(**same_name);  // same_family: the same type
        }
        if (families_.size() >= max_families)
            throw std::length_error("metric family '" + d.name + "': this registry has " +
                                    std::to_string(max_families) + " families already, the most it holds");
        auto made = std::make_unique<family<Series>>(std::move(d));
        auto& out = *made;
        families_.push_back(std::move(made));
        return out;
    }

    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<family_base>> families_;
};

}  // namespace cluster::metrics
