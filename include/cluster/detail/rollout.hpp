// cluster::detail::rollout: replacing workers in their slots without a gap — a rolling
// reload, scaling up and down, recycling one worker — one change at a time, each seeing the
// cluster as the last one left it.
#pragma once

#include <cluster/config.hpp>

#include <signal.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <cluster/detail/worker_record.hpp>
#include <cluster/events.hpp>
#include <cluster/io/async_mutex.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/shield.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/when_all.hpp>
#include <cluster/options.hpp>

namespace cluster::detail {

class supervisor;

class rollout {
public:
    using record_ptr = std::shared_ptr<worker_record>;

    explicit rollout(supervisor& s) noexcept : s_(s) {}

    // Replaces the workers one at a time (see primary::reload()). Cancelled halfway, it would
    // take its waits' ends for answers: a new worker killed as not ready "in time", an old
    // one SIGKILLed instead of retired. So it is shielded: a caller's stop ends only its wait.
    CLUSTER_DECL io::task<reload_event> reload();

    // Keeps n workers (see primary::scale()); shielded, as reload() is.
    CLUSTER_DECL io::task<void> scale(std::size_t n);

    // SIGHUP: a reload, unless one is queued already.
    CLUSTER_DECL void reload_on_signal();

    // True while a rolling reload runs or is queued.
    [[nodiscard]] bool reloading() const noexcept { return reloading_ || reload_queued_; }

    // SIGTTIN adds a worker, SIGTTOU removes one, never the last (as gunicorn).
    CLUSTER_DECL void scale_on_signal(int delta);

    // Replaces `r` (max_messages, max_memory), once.
    CLUSTER_DECL void recycle(const record_ptr& r, stop_reason why);

    // A graceful disconnect with shutdown_timeout to leave, then SIGKILL.
    CLUSTER_DECL io::task<void> retire(record_ptr r, stop_reason why);

    // A rolling reload's workers replaced so far, and out of how many; {0, 0} when none runs.
    [[nodiscard]] std::pair<std::size_t, std::size_t> reload_progress() const noexcept {
        return {reloaded_, reloading_};
    }

private:
    struct replacement {
        bool replaced = false;
        std::string failure;  // why the new worker could not take over; empty if it did (or was not needed)
    };

    // A SIGHUP's reload, once it has its turn, is no longer queued: another SIGHUP queues the next.
    CLUSTER_DECL io::task<reload_event> rolling_reload(bool by_signal = false);

    static io::task<void> reload_by_signal(rollout& self) { (void)co_await self.rolling_reload(true); }

    CLUSTER_DECL io::task<std::monostate> scale_to(std::size_t n);

    static CLUSTER_DECL io::task<void> scale_by_signal(rollout& self, int delta);

    static CLUSTER_DECL io::task<void> recycle_worker(rollout& self, record_ptr r, stop_reason why);

    // Replaces worker `id` in its slot: a new worker, ready, then the old one leaves.
    CLUSTER_DECL io::task<replacement> replace(unsigned id, stop_reason why);

    // Nothing once `fresh` is ready; else why not, once it is killed and gone.
    CLUSTER_DECL io::task<std::string> until_ready(record_ptr fresh);

    // True once r is ready; false if it exited first.
    static CLUSTER_DECL io::task<bool> ready_or_exited(record_ptr r);

    CLUSTER_DECL io::task<void> resize(std::size_t n);

    supervisor& s_;
    io::async_mutex turns_;  // reload, scale and recycling take turns
    bool reload_queued_ = false;
    std::size_t reloaded_ = 0;
    std::size_t reloading_ = 0;
};

}  // namespace cluster::detail
