// cluster::metrics histogram: observations counted into fixed buckets (each bound inclusive,
// +Inf implied) with their sum, in relaxed atomics, and histogram_family, its family.
#pragma once

#include <cluster/metrics/definition.hpp>
#include <cluster/metrics/family.hpp>
#include <cluster/metrics/snapshot.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace cluster::metrics {

// Relaxed, as a counter is (counter.hpp says why). The count is not kept apart: it is the
// buckets' total, so a snapshot taken during updates still has +Inf's bucket equal to it.
class histogram {
public:
    static constexpr metric_type type = metric_type::histogram;

    // bounds_ views the family's definition, which lives as long as the family.
    explicit histogram(const family_definition& d)
        : bounds_(d.buckets), buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(d.buckets.size() + 1)) {}
    histogram(const histogram&) = delete;
    histogram& operator=(const histogram&) = delete;

    // A NaN is no measurement: it is dropped, where it would make the sum NaN for good.
    void observe(double v) noexcept {
        if (std::isnan(v)) return;
        const auto bucket = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
        buckets_[static_cast<std::size_t>(bucket)].fetch_add(1, std::memory_order_relaxed);
        sum_.fetch_add(v, std::memory_order_relaxed);
    }

    [[nodiscard]] std::uint64_t count() const noexcept {
        std::uint64_t n = 0;
        for (std::size_t i = 0; i <= bounds_.size(); ++i) n += buckets_[i].load(std::memory_order_relaxed);
        return n;
    }
    [[nodiscard]] double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

    void read_into(series_snapshot& s) const {
        s.counts.resize(bounds_.size() + 1);
        for (std::size_t i = 0; i < s.counts.size(); ++i) s.counts[i] = buckets_[i].load(std::memory_order_relaxed);
        s.value = sum();
    }

private:
    std::span<const double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // one per bound, then +Inf's
    std::atomic<double> sum_{0};
};

using histogram_family = family<histogram>;

}  // namespace cluster::metrics
