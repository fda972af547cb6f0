// cluster::detail::primary_core's definitions: each hands the call to the supervisor. Inline
// in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <utility>

#include <cluster/detail/primary_core.hpp>
#include <cluster/detail/supervisor.hpp>

namespace cluster::detail {

CLUSTER_DECL primary_core::primary_core(primary_options options, typed_parts typed, std::vector<std::string> args)
    : s_(std::make_unique<supervisor>(std::move(options), std::move(typed), std::move(args))) {}

// Tasks go first (their ops are cancelled); then each record kills and reaps its worker.
CLUSTER_DECL primary_core::~primary_core() = default;

CLUSTER_DECL io::task<result<primary_core::record_ptr>> primary_core::start_in_new_slot(fork_options o,
                                                                                        std::string& what) {
    return s_->start_in_new_slot(std::move(o), what);
}

CLUSTER_DECL void primary_core::setup(primary_options o) {
    s_->options = std::move(o);
    s_->slots.set_policy(s_->options.restart);
    s_->events.report(event<erased>(setup_event{s_->options}));
}

CLUSTER_DECL const primary_options& primary_core::settings() const noexcept { return s_->options; }
CLUSTER_DECL bool primary_core::stopping() const noexcept { return s_->stopping; }
CLUSTER_DECL bool primary_core::gave_up() const noexcept { return s_->stopper.gave_up(); }
CLUSTER_DECL std::size_t primary_core::target() const noexcept { return s_->slots.size(); }

CLUSTER_DECL overload_counts primary_core::overload() const noexcept {
    overload_counts counts = s_->overload;
    for (const auto& [id, r] : s_->workers)
        if (r->link.is_open()) counts.fds_lost += r->link.fds_lost();
    return counts;
}

CLUSTER_DECL cluster_status primary_core::status() const { return s_->report(); }
CLUSTER_DECL io::task<result<void>> primary_core::status_changed() {
    const bool changed = co_await s_->status_news.next();  // named: g++ 12 mishandles it inside an if
    if (!changed) co_return std::make_error_code(std::errc::operation_canceled);
    co_return result<void>{};
}
CLUSTER_DECL net::endpoint primary_core::metrics_endpoint() const { return s_->exporter.local(); }

CLUSTER_DECL std::vector<primary_core::record_ptr> primary_core::alive() const { return s_->workers.alive(); }
CLUSTER_DECL primary_core::record_ptr primary_core::find(unsigned id) const { return s_->workers.find(id); }

CLUSTER_DECL std::vector<unsigned> primary_core::slots() const { return s_->slots.ids(); }
CLUSTER_DECL io::task<result<std::vector<unsigned>>> primary_core::slots_changed(std::vector<unsigned> known) {
    return s_->slots_other_than(std::move(known));
}
CLUSTER_DECL io::task<result<primary_core::record_ptr>> primary_core::worker_in_slot(unsigned slot) {
    return s_->until_serving(slot);
}
CLUSTER_DECL worker_record* primary_core::serving(unsigned slot) const noexcept { return s_->serving(slot); }

CLUSTER_DECL io::task<event<erased>> primary_core::next_event() { return s_->events.next(); }
CLUSTER_DECL io::task<event<erased>> primary_core::next_event(event_kind kind) { return s_->events.next_of(kind); }
CLUSTER_DECL io::task<event<erased>> primary_core::next_message(std::uint32_t type_id) {
    return s_->events.next_message(type_id);
}

CLUSTER_DECL result<net::endpoint> primary_core::adopt(unique_fd fd, std::string name, std::string& what) {
    return s_->balancer.adopt(std::move(fd), std::move(name), what);
}

CLUSTER_DECL void primary_core::ready() noexcept { s_->cluster_ready.set(); }
CLUSTER_DECL bool primary_core::is_ready() const noexcept { return s_->cluster_ready.is_set(); }
CLUSTER_DECL io::task<bool> primary_core::until_ready() { co_return co_await s_->cluster_ready.wait(); }

CLUSTER_DECL io::task<void> primary_core::disconnect_all() { return s_->stopper.disconnect_all(); }
CLUSTER_DECL io::task<void> primary_core::shutdown() { return s_->stopper.shutdown(); }
CLUSTER_DECL io::task<reload_event> primary_core::reload() { return s_->rollout.reload(); }
CLUSTER_DECL io::task<void> primary_core::scale(std::size_t n) { return s_->rollout.scale(n); }
CLUSTER_DECL io::task<int> primary_core::run(io::task<void> main) { return s_->stopper.run(std::move(main)); }

}  // namespace cluster::detail
