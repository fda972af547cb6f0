// cluster::metrics counter: a count that only goes up, updated with one relaxed atomic add,
// and counter_family, its family.
#pragma once

#include <cluster/metrics/definition.hpp>
#include <cluster/metrics/family.hpp>
#include <cluster/metrics/snapshot.hpp>

#include <atomic>
#include <cstdint>

namespace cluster::metrics {

// Relaxed atomics: a snapshot reads the count while updates go on, and worker threads will
// update it concurrently; nothing is ordered by a count, so relaxed is all either needs, and
// costs what a plain atomic increment does.
class counter {
public:
    static constexpr metric_type type = metric_type::counter;

    explicit counter(const family_definition&) noexcept {}
    counter(const counter&) = delete;
    counter& operator=(const counter&) = delete;

    void inc(std::uint64_t n = 1) noexcept { count_.fetch_add(n, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t value() const noexcept { return count_.load(std::memory_order_relaxed); }

    void read_into(series_snapshot& s) const { s.counts.assign(1, value()); }

private:
    std::atomic<std::uint64_t> count_{0};
};

using counter_family = family<counter>;

}  // namespace cluster::metrics
