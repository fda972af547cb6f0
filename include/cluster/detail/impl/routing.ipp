// cluster::detail::router's definitions, which need the whole supervisor. Inline in a header-only
// build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/detail/routing.hpp>

namespace cluster::detail {

CLUSTER_DECL io::task<void> router::pump(record_ptr r) {
    std::vector<envelope> burst;
    while (auto e = co_await r->link.receive()) {
        if (!(e->flags & wire::frame_flags::routed)) {
            dispatch(r, std::move(*e));
            continue;
        }
        // The routed messages that follow it, as far as they are here already, go on together;
        // one that is not routed waits for them, in the order they came.
        burst.push_back(std::move(*e));
        std::optional<envelope> after;
        while ((after = r->link.try_receive()) && (after->flags & wire::frame_flags::routed)) {
            burst.push_back(std::move(*after));
            after.reset();
        }
        const bool sound = co_await forward(*r, burst);
        burst.clear();
        if (after && sound) dispatch(r, std::move(*after));
    }
    r->end_link();
    s_.slots.notify();
    s_.overload.fds_lost += r->link.fds_lost();
    s_.balancer.worker_gone(*r, s_.slots.contains(r->home_slot));
    s_.events.report(event<erased>(disconnect_event{r->id, r->link.close_reason()}, handle_of(r)));
    r->reader_finished();
    if (!r->disconnect_sent && !r->retiring && !s_.stopping) s_.tasks.spawn(watch_exit(r, s_.options.shutdown_timeout));
}

CLUSTER_DECL void router::dispatch(const record_ptr& r, envelope&& e) {
    if (e.flags & wire::frame_flags::response) {
        (void)r->link.requests.complete(e.tag, std::move(e));
    } else if (e.value.index() >= control::count) {
        if (auto m = to_incoming(r->link, s_.ops, std::move(e), r->id))
            s_.events.report(event<erased>(std::move(*m), handle_of(r)));
    } else if (auto* ask = std::get_if<control::listen_request>(&e.value)) {
        listen_for(r, *ask, e.tag);
    } else {
        on_control(r, std::move(e.value));
    }
    s_.status_news.notify();  // every frame moves the worker's counts, if nothing else
}

CLUSTER_DECL void router::on_control(const record_ptr& r, control::link_protocol::variant&& m) {
    if (auto* beat = std::get_if<control::heartbeat>(&m)) {
        on_heartbeat(*r, *beat);
    } else if (std::holds_alternative<control::online>(m)) {
        came_online(r);
    } else if (std::holds_alternative<control::ready>(m)) {
        r->ready.set();
        s_.slots.notify();
    } else if (std::holds_alternative<control::recycle>(m)) {
        s_.rollout.recycle(r, stop_reason::max_messages);
    } else if (auto* l = std::get_if<control::listening>(&m)) {
        s_.events.report(
            event<erased>(listening_event{r->id, l->family, std::move(l->address), l->port, l->udp}, handle_of(r)));
    } else if (auto* ack = std::get_if<control::handoff_ack>(&m)) {
        if (s_.balancer.acknowledged(*r, ack->seq, ack->accepted))
            ++(ack->accepted ? r->connections_handed : r->connections_refused);
    } else if (auto* closed = std::get_if<control::connections_closed>(&m)) {
        if (auto why = s_.balancer.connections_closed(*r, closed->listener, closed->count))
            r->link.abort(make_error_code(errc::invalid_value), std::move(*why));
    } else if (auto* bye = std::get_if<control::unlisten>(&m)) {
        s_.balancer.unlisten(*r, bye->listener);
    } else if (auto* report = std::get_if<control::metrics_report>(&m)) {
        take_metrics(*r, std::move(report->snapshot));
    } else if (std::holds_alternative<control::leaving>(m)) {
        r->exited_after_disconnect = true;
    }
}

// Echoed at once, without waiting for the socket: the round trip the worker measures is the
// two loops' and the socketpair's, which is what a slow or stalled loop shows in.
CLUSTER_DECL void router::on_heartbeat(record& r, const control::heartbeat& beat) {
    r.last_beat = record::clock::now();
    if (beat.round_trip_us > 0) r.heartbeat_rtt = std::chrono::microseconds(beat.round_trip_us);
    const control::heartbeat_echo echo{beat.sent_us};
    (void)r.link.send(echo);
}

// A report past the aggregate's bounds, or a family defined otherwise by another worker (a
// binary upgrade's two builds), is left out and said, never rendered half.
CLUSTER_DECL void router::take_metrics(const record& r, metrics::registry_snapshot snapshot) {
    const auto taken = s_.app_metrics.update(r.id, std::move(snapshot));
    if (!taken.accepted) s_.metrics_log.hit("worker " + std::to_string(r.id) + "'s metrics refused: " + taken.refusal);
    for (const auto& why : taken.skipped) s_.metrics_log.hit("worker " + std::to_string(r.id) + "'s metrics: " + why);
}

CLUSTER_DECL void router::came_online(const record_ptr& r) {
    r->online = true;
    r->online_at = record::clock::now();
    r->last_beat = r->online_at;
    if (!r->wait_ready) r->ready.set();
    s_.slots.notify();
    s_.events.report(event<erased>(online_event{r->id, r->pid, r->home_slot}, handle_of(r)));
}

CLUSTER_DECL void router::listen_for(const record_ptr& r, const control::listen_request& ask, std::uint32_t tag) {
    net::endpoint local;
    const auto reply = s_.balancer.listen(r, ask, s_.tasks, local);
    (void)r->link.send(reply, tag, wire::frame_flags::response);
    // A listener is news to whoever waits for the cluster to serve: a binary upgrade's successor.
    if (reply.error == 0) s_.slots.notify();
    if (reply.error == 0)
        s_.events.report(event<erased>(listening_event{r->id, local.family(), local.address(), local.port(),
                                                       net::udp_endpoint::names_udp(ask.endpoint)},
                                       handle_of(r)));
}

CLUSTER_DECL io::task<bool> router::forward(record& from, std::vector<envelope>& burst) {
    std::vector<boxed_message> run;
    std::uint32_t run_to = 0;
    for (auto& e : burst) {
        if (e.value.index() < control::count) continue;
        // A thread's message comes boxed; a process's is decoded here, and cuts it off if it fails.
        auto boxed = e.is_boxed() ? wire::decode_result<boxed_message>(std::move(e.boxed))
                                  : s_.ops.decode(std::get<wire::raw_message>(e.value));
        if (!boxed) {
            co_await deliver(from, run_to, run);
            from.link.abort(boxed.error().code, std::move(boxed.error().path));
            co_return false;
        }
        if (!run.empty() && e.tag != run_to) {
            co_await deliver(from, run_to, run);
            run.clear();
        }
        run_to = e.tag;
        run.push_back(std::move(*boxed));
    }
    co_await deliver(from, run_to, run);
    co_return true;
}

// Copied to all targets but the last, which takes each message itself: a send_to's goes on as it
// came, and a thread's fds in it travel on as the same descriptors.
CLUSTER_DECL io::task<void> router::deliver(record& from, std::uint32_t to, std::vector<boxed_message>& run) {
    if (run.empty()) co_return;
    const auto targets = this->targets(from, to);
    for (std::size_t i = 0; i < targets.size(); ++i) {
        auto& l = targets[i]->link;
        const bool last = i + 1 == targets.size();
        for (auto& m : run)
            (void)co_await l.wait_for_room(s_.ops.queue(l, m, last, from.id, wire::frame_flags::routed));
    }
}

CLUSTER_DECL std::vector<router::record_ptr> router::targets(const record& from, std::uint32_t to) const {
    std::vector<record_ptr> out;
    if (to == wire::frame_flags::all_workers) {
        for (const auto& [id, r] : s_.workers)
            if (id != from.id && r->is_connected()) out.push_back(r);
    } else if (auto r = s_.workers.find(to); r && r->is_connected()) {
        out.push_back(std::move(r));
    }
    return out;
}

}  // namespace cluster::detail
