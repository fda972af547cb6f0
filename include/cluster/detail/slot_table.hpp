// cluster::detail::slot_table: the places in the cluster that the primary keeps filled —
// each with the fork options it was made with and the worker filling it — the restart
// policy's decision when that worker exits, and the tasks waiting for a slot to change.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <stop_token>
#include <utility>
#include <vector>

#include <cluster/detail/restart_planner.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/io/detail/notice.hpp>
#include <cluster/options.hpp>
#include <cluster/restart_policy.hpp>

namespace cluster::detail {

class slot_table {
public:
    using clock = std::chrono::steady_clock;

    explicit slot_table(const restart_policy& policy) : planner_(policy) {}

    // A new slot, empty, for workers forked with `o`.
    unsigned add(fork_options o) {
        const unsigned slot = next_slot_++;
        slots_[slot].options = std::move(o);
        changes_.notify();
        return slot;
    }

    [[nodiscard]] bool contains(unsigned slot) const noexcept { return slots_.contains(slot); }
    [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }
    [[nodiscard]] bool empty() const noexcept { return slots_.empty(); }

    // The fork options of `slot`; none once it is gone.
    [[nodiscard]] const fork_options* options(unsigned slot) const noexcept {
        auto it = slots_.find(slot);
        return it == slots_.end() ? nullptr : &it->second.options;
    }

    // The worker filling `slot`; 0 while none does (a restart is pending, or it was forgotten).
    [[nodiscard]] unsigned worker(unsigned slot) const noexcept {
        auto it = slots_.find(slot);
        return it == slots_.end() ? 0 : it->second.worker;
    }

    // The slot `worker_id` fills; 0 if none (it is leaving, or is a replacement not ready yet).
    [[nodiscard]] unsigned slot_of(unsigned worker_id) const noexcept {
        if (worker_id == 0) return 0;
        for (const auto& [slot, s] : slots_)
            if (s.worker == worker_id) return slot;
        return 0;
    }

    // Every slot, in order.
    [[nodiscard]] std::vector<unsigned> ids() const {
        std::vector<unsigned> out;
        for (const auto& [slot, s] : slots_) out.push_back(slot);
        return out;
    }

    // The workers filling slots, in slot order.
    [[nodiscard]] std::vector<unsigned> workers() const {
        std::vector<unsigned> out;
        for (const auto& [slot, s] : slots_)
            if (s.worker != 0) out.push_back(s.worker);
        return out;
    }

    // `worker_id` fills `slot` from now on, instead of any other; a restart pending there is off.
    void bind(unsigned slot, unsigned worker_id) {
        auto it = slots_.find(slot);
        if (it == slots_.end()) return;
        call_off_restart(it->second);
        it->second.worker = worker_id;
        changes_.notify();
    }

    // Its worker exited: the slot is empty until the restart policy fills it again.
    void vacate(unsigned slot) noexcept {
        if (auto it = slots_.find(slot); it != slots_.end()) it->second.worker = 0;
        changes_.notify();
    }

    // The slot is no longer kept; a restart pending there is off.
    void forget(unsigned slot) {
        auto it = slots_.find(slot);
        if (it == slots_.end()) return;
        call_off_restart(it->second);
        slots_.erase(it);
        planner_.forget(slot);
        changes_.notify();
    }

    // Wakes the tasks waiting for a change: what changed may be outside the table (a slot's
    // worker became ready, or its link ended), or the primary began to stop.
    void notify() noexcept { changes_.notify(); }
    // The next change to a slot: one added, filled, emptied or given up, or notify(). False if
    // the awaiting task was asked to stop first.
    [[nodiscard]] auto next_change() noexcept { return changes_.next(); }

    // The slot to give up when scaling down: one waiting for a restart, else the one of the
    // oldest worker (the lowest id).
    [[nodiscard]] unsigned extra() const noexcept {
        unsigned oldest = 0, oldest_worker = 0;
        for (const auto& [slot, s] : slots_) {
            if (s.worker == 0) return slot;
            if (oldest == 0 || s.worker < oldest_worker) {
                oldest = slot;
                oldest_worker = s.worker;
            }
        }
        return oldest;
    }

    // Stopped once the restart pending in `slot` is off: the slot was filled or forgotten.
    [[nodiscard]] std::stop_token pending_restart(unsigned slot) {
        auto it = slots_.find(slot);
        if (it == slots_.end()) return {};
        return it->second.pending_restart.get_token();
    }

    // What the restart policy says of a worker's end.
    restart_decision decide(const worker_exit& e, clock::time_point now) { return planner_.on_exit(e, now); }
    // Restarts since the backoff was last reset, the one just decided included.
    [[nodiscard]] unsigned attempt() const noexcept { return planner_.attempt(); }
    // A new policy starts with no restarts counted.
    void set_policy(const restart_policy& policy) { planner_ = restart_planner(policy); }

private:
    struct slot_state {
        fork_options options;
        unsigned worker = 0;
        std::stop_source pending_restart;
    };

    static void call_off_restart(slot_state& s) {
        s.pending_restart.request_stop();
        s.pending_restart = std::stop_source{};
    }

    std::map<unsigned, slot_state> slots_;
    unsigned next_slot_ = 1;
    restart_planner planner_;
    io::detail::notice changes_;
};

}  // namespace cluster::detail
