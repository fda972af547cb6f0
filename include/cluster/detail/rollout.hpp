// cluster::detail::rollout<P>: replacing workers in their slots without a gap — a rolling
// reload, scaling up and down, recycling one worker — one change at a time, each seeing the
// cluster as the last one left it.
#pragma once

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

template <class P>
class supervisor;

template <class P>
class rollout {
public:
    using record_ptr = std::shared_ptr<worker_record<P>>;

    explicit rollout(supervisor<P>& s) noexcept : s_(s) {}

    // Replaces the workers one at a time (see primary::reload()). Cancelled halfway, it would
    // take its waits' ends for answers: a new worker killed as not ready "in time", an old
    // one SIGKILLed instead of retired. So it is shielded: a caller's stop ends only its wait.
    io::task<reload_event> reload() { co_return co_await io::shield(s_.tasks, rolling_reload()); }

    // Keeps n workers (see primary::scale()); shielded, as reload() is.
    io::task<void> scale(std::size_t n) { co_await io::shield(s_.tasks, scale_to(n)); }

    // SIGHUP: a reload, unless one is queued already.
    void reload_on_signal() {
        if (reload_queued_) return;
        reload_queued_ = true;
        s_.tasks.spawn(reload_by_signal(*this));
    }

    // SIGTTIN adds a worker, SIGTTOU removes one, never the last (as gunicorn).
    void scale_on_signal(int delta) { s_.tasks.spawn(scale_by_signal(*this, delta)); }

    // Replaces `r` (max_messages, max_memory), once.
    void recycle(const record_ptr& r, stop_reason why) {
        if (r->recycle_asked || r->retiring || s_.slots.slot_of(r->id) == 0 || s_.stopping) return;
        r->recycle_asked = true;
        s_.tasks.spawn(recycle_worker(*this, r, why));
    }

    // A graceful disconnect with shutdown_timeout to leave, then SIGKILL.
    io::task<void> retire(record_ptr r, stop_reason why) {
        r->retiring = true;
        if (r->reason == stop_reason::none) r->reason = why;
        auto left = co_await io::with_timeout(disconnect_and_wait(r), s_.options.shutdown_timeout);
        if (left) co_return;
        (void)r->child.send_signal(SIGKILL);
        (void)co_await r->exited.wait();
    }

private:
    struct replacement {
        bool replaced = false;
        std::string failure;  // why the new worker could not take over; empty if it did (or was not needed)
    };

    // A SIGHUP's reload, once it has its turn, is no longer queued: another SIGHUP queues the next.
    io::task<reload_event> rolling_reload(bool by_signal = false) {
        auto turn = co_await turns_.lock();
        if (by_signal) reload_queued_ = false;
        reload_event out;
        if (!turn || s_.stopping) {
            out.ok = false;
            out.what = "the primary is stopping";
            co_return out;
        }
        for (unsigned id : s_.slots.workers()) {
            auto r = co_await replace(id, stop_reason::reload);
            if (!r.failure.empty()) {
                out.ok = false;
                out.what = std::move(r.failure);
                break;
            }
            out.replaced += r.replaced ? 1 : 0;
        }
        s_.events.report(event<P>(out));
        co_return out;
    }

    static io::task<void> reload_by_signal(rollout& self) { (void)co_await self.rolling_reload(true); }

    io::task<std::monostate> scale_to(std::size_t n) {
        auto turn = co_await turns_.lock();
        if (turn && !s_.stopping) co_await resize(n);
        co_return std::monostate{};
    }

    static io::task<void> scale_by_signal(rollout& self, int delta) {
        auto turn = co_await self.turns_.lock();
        if (!turn || self.s_.stopping) co_return;
        const std::size_t now = self.s_.slots.size();
        if (delta < 0 && now <= 1) co_return;
        try {
            co_await self.resize(delta > 0 ? now + 1 : now - 1);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s\n", e.what());
        }
    }

    static io::task<void> recycle_worker(rollout& self, record_ptr r, stop_reason why) {
        auto turn = co_await self.turns_.lock();
        if (!turn) co_return;
        auto done = co_await self.replace(r->id, why);
        if (!done.replaced && done.failure.empty()) co_return;  // it left meanwhile
        r->recycle_asked = false;                               // if it failed, a later check asks again
        reload_event out;
        out.reason = why;
        out.ok = done.failure.empty();
        out.replaced = done.replaced ? 1 : 0;
        out.what = std::move(done.failure);
        self.s_.events.report(event<P>(std::move(out)));
    }

    // Replaces worker `id` in its slot: a new worker, ready, then the old one leaves.
    io::task<replacement> replace(unsigned id, stop_reason why) {
        auto old = s_.workers.find(id);
        const unsigned slot = old ? s_.slots.slot_of(id) : 0;
        if (!old || old->retiring || old->is_dead() || slot == 0 || s_.stopping) co_return replacement{};
        std::string what;
        auto started = co_await s_.start(slot, what, false);
        if (!started) co_return replacement{false, what + ": " + started.error().message()};
        auto fresh = std::move(*started);
        if (auto failure = co_await until_ready(fresh); !failure.empty()) co_return replacement{false, failure};
        const unsigned filling = s_.slots.worker(slot);
        if (s_.stopping || !s_.slots.contains(slot) || (filling != 0 && filling != id)) {
            // The slot went away, or a restart already filled it after the old one died.
            co_await retire(fresh, why);
            co_return replacement{};
        }
        s_.bind(slot, fresh);
        co_await retire(old, why);
        co_return replacement{true, {}};
    }

    // Nothing once `fresh` is ready; else why not, once it is killed and gone.
    io::task<std::string> until_ready(record_ptr fresh) {
        auto ready = co_await io::with_timeout(ready_or_exited(fresh), s_.options.ready_timeout);
        if (ready && *ready) co_return std::string{};
        fresh->reason = stop_reason::not_ready;
        (void)fresh->child.send_signal(SIGKILL);
        (void)co_await fresh->exited.wait();
        co_return "worker " + std::to_string(fresh->id) +
            (ready ? " exited before it was ready"
                   : " was not ready within " + std::to_string(s_.options.ready_timeout.count()) + " ms");
    }

    // True once r is ready; false if it exited first.
    static io::task<bool> ready_or_exited(record_ptr r) {
        auto first = co_await io::when_any(io::when_set(r->ready), io::when_set(r->exited));
        co_return first.index() == 0;
    }

    io::task<void> resize(std::size_t n) {
        while (s_.slots.size() < n) {
            std::string what;
            auto started = co_await s_.start_in_new_slot(fork_options{}, what);
            if (!started) throw std::system_error(started.error(), what);
        }
        std::vector<io::task<void>> leaving;
        while (s_.slots.size() > n) {
            const unsigned slot = s_.slots.extra();
            auto r = s_.workers.find(s_.slots.worker(slot));
            s_.forget_slot(slot);
            if (r) leaving.push_back(retire(std::move(r), stop_reason::scale_down));
        }
        (void)co_await io::when_all(std::move(leaving));
    }

    supervisor<P>& s_;
    io::async_mutex turns_;  // reload, scale and recycling take turns
    bool reload_queued_ = false;
};

}  // namespace cluster::detail
