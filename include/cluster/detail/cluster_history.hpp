// cluster::detail::cluster_history: what the primary remembers of workers gone and changes
// past — their counts, exits by reason, hangs, restarts per slot, reloads, signals taken — so
// totals only grow.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include <cluster/events.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/status.hpp>

namespace cluster::detail {

// What an exit is counted as (see cluster_status::exits): the reason the primary ended the
// worker for, else how it ended on its own.
inline std::string exit_reason(stop_reason reason, const io::exit_status& status) {
    if (reason != stop_reason::none) return to_string(reason);
    return status.success() ? "exit" : "crash";
}

inline void add(worker_counts& to, const worker_counts& c) noexcept {
    to.messages_sent += c.messages_sent;
    to.messages_received += c.messages_received;
    to.bytes_sent += c.bytes_sent;
    to.bytes_received += c.bytes_received;
    to.connections_handed += c.connections_handed;
    to.connections_refused += c.connections_refused;
}

class cluster_history {
public:
    using clock = std::chrono::steady_clock;

    // A worker exited, having counted `c`: its counts join the past's for good.
    void worker_exited(const worker_counts& c, stop_reason reason, const io::exit_status& status) {
        add(gone_, c);
        ++exits_[exit_reason(reason, status)];
        if (reason == stop_reason::hung) ++hangs_killed_;
    }

    // The restart policy starts a worker in `slot` in place of one that exited.
    void restarted(unsigned slot) {
        ++restarts_;
        ++slot_restarts_[slot];
    }

    // A rolling reload ran to its end (replacing every worker, or stopping at one that failed).
    void reloaded(clock::duration took) noexcept {
        ++reloads_;
        last_reload_ = took;
    }

    // The primary took signal `name` ("SIGHUP", ...) off its signalfd and acted on it.
    void signal_taken(const std::string& name) { ++signals_[name]; }

    [[nodiscard]] std::uint64_t restarts() const noexcept { return restarts_; }
    [[nodiscard]] std::uint64_t restarts_of(unsigned slot) const {
        auto it = slot_restarts_.find(slot);
        return it == slot_restarts_.end() ? 0 : it->second;
    }

    // The history's part of a snapshot: the totals of the workers gone (the caller adds the
    // living ones'), exits, hangs, restarts, reloads, signals, uptime.
    void fill(cluster_status& s, clock::time_point now) const {
        s.uptime = now - started_;
        s.restarts = restarts_;
        s.hangs_killed = hangs_killed_;
        s.exits = exits_;
        s.reloads = reloads_;
        s.last_reload = last_reload_;
        s.signals = signals_;
        s.totals = gone_;
    }

private:
    const clock::time_point started_ = clock::now();
    worker_counts gone_;
    std::map<std::string, std::uint64_t> exits_;
    std::uint64_t hangs_killed_ = 0;
    std::uint64_t restarts_ = 0;
    std::map<unsigned, std::uint64_t> slot_restarts_;
    std::uint64_t reloads_ = 0;
    clock::duration last_reload_{};
    std::map<std::string, std::uint64_t> signals_;
};

}  // namespace cluster::detail
