// cluster::detail::rollout's definitions, which need the whole supervisor. Inline in a header-only
// build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/detail/rollout.hpp>

namespace cluster::detail {

CLUSTER_DECL io::task<reload_event> rollout::reload() { co_return co_await io::shield(s_.tasks, rolling_reload()); }

CLUSTER_DECL io::task<void> rollout::scale(std::size_t n) { co_await io::shield(s_.tasks, scale_to(n)); }

CLUSTER_DECL void rollout::scale_on_signal(int delta) { s_.tasks.spawn(scale_by_signal(*this, delta)); }

CLUSTER_DECL void rollout::reload_on_signal() {
    if (reload_queued_) return;
    reload_queued_ = true;
    s_.tasks.spawn(reload_by_signal(*this));
}

CLUSTER_DECL void rollout::recycle(const record_ptr& r, stop_reason why) {
    if (r->recycle_asked || r->retiring || s_.slots.slot_of(r->id) == 0 || s_.stopping) return;
    r->recycle_asked = true;
    s_.tasks.spawn(recycle_worker(*this, r, why));
}

CLUSTER_DECL io::task<void> rollout::retire(record_ptr r, stop_reason why) {
    r->retiring = true;
    if (r->reason == stop_reason::none) r->reason = why;
    auto left = co_await io::with_timeout(disconnect_and_wait(r), s_.options.shutdown_timeout);
    if (left) co_return;
    (void)r->signal(SIGKILL);
    (void)co_await r->exited.wait();
}

CLUSTER_DECL io::task<reload_event> rollout::rolling_reload(bool by_signal) {
    auto turn = co_await turns_.lock();
    if (by_signal) reload_queued_ = false;
    reload_event out;
    if (!turn || s_.stopping) {
        out.ok = false;
        out.what = "the primary is stopping";
        co_return out;
    }
    const auto began = worker_record::clock::now();
    const auto ids = s_.slots.workers();
    // systemd hears of a reload of a service it knows to be ready: RELOADING=1, then READY=1.
    const bool announced = s_.cluster_ready.is_set();
    reloaded_ = 0;
    reloading_ = ids.size();
    if (announced) s_.notifier.reloading(s_.status());
    for (unsigned id : ids) {
        auto r = co_await replace(id, stop_reason::reload);
        if (!r.failure.empty()) {
            out.ok = false;
            out.what = std::move(r.failure);
            break;
        }
        out.replaced += r.replaced ? 1 : 0;
        ++reloaded_;
        s_.notifier.status(s_.status());
    }
    reloading_ = 0;
    s_.history.reloaded(worker_record::clock::now() - began);
    s_.status_news.notify();
    if (announced && !s_.stopper.shutdown_begun()) s_.notifier.ready(s_.status());
    s_.events.report(event<erased>(out));
    co_return out;
}

CLUSTER_DECL io::task<std::monostate> rollout::scale_to(std::size_t n) {
    auto turn = co_await turns_.lock();
    if (turn && !s_.stopping) co_await resize(n);
    co_return std::monostate{};
}

CLUSTER_DECL io::task<void> rollout::scale_by_signal(rollout& self, int delta) {
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

CLUSTER_DECL io::task<void> rollout::recycle_worker(rollout& self, record_ptr r, stop_reason why) {
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
    self.s_.events.report(event<erased>(std::move(out)));
}

CLUSTER_DECL io::task<rollout::replacement> rollout::replace(unsigned id, stop_reason why) {
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

CLUSTER_DECL io::task<std::string> rollout::until_ready(record_ptr fresh) {
    auto ready = co_await io::with_timeout(ready_or_exited(fresh), s_.options.ready_timeout);
    if (ready && *ready) co_return std::string{};
    fresh->reason = stop_reason::not_ready;
    (void)fresh->signal(SIGKILL);
    (void)co_await fresh->exited.wait();
    co_return "worker " + std::to_string(fresh->id) +
        (ready ? " exited before it was ready"
               : " was not ready within " + std::to_string(s_.options.ready_timeout.count()) + " ms");
}

CLUSTER_DECL io::task<bool> rollout::ready_or_exited(record_ptr r) {
    auto first = co_await io::when_any(io::when_set(r->ready), io::when_set(r->exited));
    co_return first.index() == 0;
}

CLUSTER_DECL io::task<void> rollout::resize(std::size_t n) {
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

}  // namespace cluster::detail
