// cluster::metrics gauge: a number that goes up and down (set, added to, taken from), held in
// a relaxed atomic double, and gauge_family, its family.
#pragma once

#include <cluster/metrics/definition.hpp>
#include <cluster/metrics/family.hpp>
#include <cluster/metrics/snapshot.hpp>

#include <atomic>

namespace cluster::metrics {

// Relaxed, as a counter is (counter.hpp says why); add and sub are a compare-exchange loop,
// which x86 has no single instruction for on a double.
class gauge {
public:
    static constexpr metric_type type = metric_type::gauge;

    explicit gauge(const family_definition&) noexcept {}
    gauge(const gauge&) = delete;
    gauge& operator=(const gauge&) = delete;

    void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
    void inc(double d = 1) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
    void dec(double d = 1) noexcept { value_.fetch_sub(d, std::memory_order_relaxed); }
    [[nodiscard]] double value() const noexcept { return value_.load(std::memory_order_relaxed); }

    void read_into(series_snapshot& s) const {
        s.counts.clear();
        s.value = value();
    }

private:
    std::atomic<double> value_{0};
};

using gauge_family = family<gauge>;

}  // namespace cluster::metrics
