// cluster::detail::restart_planner: restart_policy applied to one exit after another — the
// backoff step, the restarts of the last period, each slot's unstable exits in a row, and
// the decision each exit gets.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <string>

#include <cluster/exit_code.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/restart_policy.hpp>

namespace cluster::detail {

struct restart_decision {
    enum class action {
        restart,  // after `delay`
        none,     // this exit is not one to replace (see what)
        give_up,  // a crash loop: no more restarts (see what)
    };
    action next = action::none;
    std::chrono::milliseconds delay{0};
    std::string what;  // why, for none and give_up
};

// One worker's end, as the restart policy weighs it.
struct worker_exit {
    unsigned slot = 0;
    io::exit_status status;
    bool exited_after_disconnect = false;
    std::chrono::steady_clock::duration uptime{};                   // since its fork
    std::optional<std::chrono::steady_clock::duration> online_for;  // since it came online; none if it never did
};

// The policy's state across exits: the backoff step, the restarts of the last period, and
// the unstable exits in a row of each slot.
class restart_planner {
public:
    using clock = std::chrono::steady_clock;

    explicit restart_planner(restart_policy policy, std::uint64_t seed = std::random_device{}())
        : policy_(policy), rng_(seed) {}

    // A worker ended at `now`, as `e` says.
    restart_decision on_exit(const worker_exit& e, clock::time_point now) {
        if (gave_up_) return {restart_decision::action::none, {}, "restarts were given up earlier"};
        if (auto why = not_replaced(e.status, e.exited_after_disconnect); !why.empty())
            return {restart_decision::action::none, {}, why};
        // A worker that ran for stable_uptime was no crash loop: it starts the backoff over
        // and is not counted, so workers that served for hours and were killed together (the
        // OOM killer, a pkill) are all replaced, however many there are.
        const bool stable = e.uptime >= policy_.stable_uptime;
        if (stable) step_ = 0;
        // Nor is a worker the system ran out of descriptors or memory for: that is load to
        // wait out with the backoff, and giving up would turn it into an outage.
        if (out_of_resources(e.status)) return restart();
        // The backoff spaces one slot's restarts too far apart for the period to see them:
        // this count is what catches a worker failing alone at every start. It comes first
        // because it names the slot: when the jitter packs that slot's restarts into the
        // period too, both caps trip on the same exit.
        if (!unstable(e)) {
            unstable_in_a_row_.erase(e.slot);
        } else if (++unstable_in_a_row_[e.slot] > policy_.max_unstable_restarts) {
            return give_up(unstable_reason(e.slot));
        }
        while (!restarts_.empty() && now - restarts_.front() > policy_.period) restarts_.pop_front();
        if (!stable && restarts_.size() >= policy_.max_restarts) return give_up(storm_reason());
        if (!stable) restarts_.push_back(now);
        return restart();
    }

    // The slot is no longer kept: its unstable exits are forgotten with it.
    void forget(unsigned slot) { unstable_in_a_row_.erase(slot); }

    // The next delay before jitter; it grows with every restart until a stable uptime.
    [[nodiscard]] std::chrono::milliseconds backoff() const {
        const double grown = static_cast<double>(policy_.initial_delay.count()) * std::pow(policy_.factor, step_);
        const double capped = std::min(grown, static_cast<double>(policy_.max_delay.count()));
        return std::chrono::milliseconds(static_cast<std::int64_t>(capped));
    }
    // Restarts since the backoff was last reset, the one just decided included.
    [[nodiscard]] unsigned attempt() const noexcept { return step_; }
    [[nodiscard]] bool gave_up() const noexcept { return gave_up_; }
    [[nodiscard]] const restart_policy& policy() const noexcept { return policy_; }

private:
    restart_decision restart() {
        const auto delay = jittered(backoff());
        ++step_;
        return {restart_decision::action::restart, delay, {}};
    }

    restart_decision give_up(std::string why) {
        gave_up_ = true;
        return {restart_decision::action::give_up, {}, std::move(why)};
    }

    // It exited before coming online, or within min_uptime of it.
    bool unstable(const worker_exit& e) const noexcept {
        if (policy_.min_uptime.count() == 0) return false;
        return !e.online_for || *e.online_for < policy_.min_uptime;
    }

    static bool out_of_resources(const io::exit_status& status) noexcept {
        return status.exited() && status.code == exit_code::out_of_resources;
    }

    // Why this exit is not one the mode replaces; empty when it is.
    std::string not_replaced(const io::exit_status& status, bool exited_after_disconnect) const {
        switch (policy_.mode) {
        case restart_mode::permanent: return {};
        case restart_mode::temporary: return "temporary workers are not restarted";
        case restart_mode::transient:
            if (exited_after_disconnect) return "a transient worker that left after a disconnect is not restarted";
            if (status.success()) return "a transient worker that exited with code 0 is not restarted";
            return {};
        }
        return {};
    }

    std::chrono::milliseconds jittered(std::chrono::milliseconds d) {
        const double j = std::clamp(policy_.jitter, 0.0, 1.0);
        std::uniform_real_distribution<double> scale(1.0 - j, 1.0 + j);
        const double scaled = static_cast<double>(d.count()) * scale(rng_);
        return std::chrono::milliseconds(
            static_cast<std::int64_t>(std::min(scaled, static_cast<double>(policy_.max_delay.count()))));
    }

    std::string storm_reason() const {
        return "more than " + std::to_string(policy_.max_restarts) + " restarts within " +
               std::to_string(policy_.period.count()) + " ms";
    }

    std::string unstable_reason(unsigned slot) const {
        return "more than " + std::to_string(policy_.max_unstable_restarts) + " unstable restarts of slot " +
               std::to_string(slot) + ": each worker exited within " + std::to_string(policy_.min_uptime.count()) +
               " ms of coming online, or before";
    }

    restart_policy policy_;
    std::mt19937_64 rng_;
    unsigned step_ = 0;
    std::deque<clock::time_point> restarts_;
    std::map<unsigned, unsigned> unstable_in_a_row_;  // by slot; a slot absent has none
    bool gave_up_ = false;
};

}  // namespace cluster::detail
