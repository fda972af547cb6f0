// cluster::detail::status_rates: a worker's CPU use and messages per second, from two
// snapshots of the cluster's status — and the earlier snapshot, kept between requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

#include <cluster/status.hpp>

namespace cluster::detail {

struct worker_rates {
    double cpu_percent = 0;          // of one core, as top and pm2 count it: 250 is two and a half cores busy
    double messages_per_second = 0;  // to and from the primary
};

inline std::uint64_t messages_of(const worker_status& w) noexcept {
    return w.counts.messages_sent + w.counts.messages_received;
}

// Over the `window` since `before`, if the worker was in it; else over the worker's life so far
// (a worker started since has no earlier figures, and its life is shorter than the window).
inline worker_rates rates_of(const worker_status& now, const cluster_status* before, double window) {
    const worker_status* then = nullptr;
    if (before)
        for (const auto& w : before->workers)
            if (w.id == now.id) then = &w;
    double seconds = window;
    double cpu = now.cpu_seconds;
    double messages = static_cast<double>(messages_of(now));
    if (then && window > 0) {
        cpu -= then->cpu_seconds;
        messages -= static_cast<double>(messages_of(*then));
    } else {
        seconds = std::chrono::duration<double>(now.uptime).count();
    }
    if (seconds <= 0) return {};
    return {100 * cpu / seconds, messages / seconds};
}

// The snapshot rates are taken against: the latest one at least `min_window` older than the
// one asked about, so that two clients asking a moment apart do not get rates over a few
// milliseconds, which a clock tick's worth of CPU would make 100 %.
class status_history {
public:
    using clock = std::chrono::steady_clock;
    static constexpr std::chrono::milliseconds min_window{900};

    // The earlier snapshot for `now`, taken at `at`, and the seconds between them (none for the
    // first request); `now` is kept for later ones.
    std::pair<const cluster_status*, double> against(const cluster_status& now, clock::time_point at) {
        if (!latest_ || at - latest_->second >= min_window) previous_ = std::exchange(latest_, std::pair{now, at});
        if (!previous_) return {nullptr, 0.0};
        return {&previous_->first, std::chrono::duration<double>(at - previous_->second).count()};
    }

private:
    using taken = std::pair<cluster_status, clock::time_point>;
    std::optional<taken> previous_;  // the one rates are taken against
    std::optional<taken> latest_;    // the next one, once it is old enough
};

}  // namespace cluster::detail
