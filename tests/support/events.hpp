// support: taking a primary's events in the shapes tests check — through a worker's event
// of some kind, n of a kind — and reading them back as words ("fork online exit"); and
// awaiting its status until it shows what a test waits for.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "waiting.hpp"

namespace support {

inline const char* kind_name(cluster::event_kind k) {
    static constexpr std::array<const char*, 10> names{"fork", "online", "listening",         "message", "disconnect",
                                                       "exit", "setup",  "restart_scheduled", "gave_up", "reload"};
    return names[static_cast<std::size_t>(k)];
}

// The primary's status once `ok` holds of it, awaiting each change between looks: changes
// that make no event (a heartbeat, a signal taken) are waited for too.
template <class P, class Predicate>
cluster::task<cluster::cluster_status> status_when(cluster::primary<P>& p, Predicate ok) {
    for (;;) {
        auto s = p.status();
        if (ok(s)) co_return s;
        auto changed = co_await bounded(p.status_changed());
        REQUIRE(changed.has_value());
    }
}

// Takes events until worker id's event of kind k, which is the last one returned.
template <class P>
cluster::task<std::vector<cluster::event<P>>> events_through(cluster::primary<P>& p, unsigned id,
                                                             cluster::event_kind k) {
    std::vector<cluster::event<P>> seen;
    do seen.push_back(co_await bounded(p.next_event()));
    while (seen.back().kind() != k || seen.back().worker_id() != id);
    co_return seen;
}

// Takes events until n of them were E's; returns those.
template <class E, class P>
cluster::task<std::vector<E>> collect(cluster::primary<P>& p, std::size_t n) {
    std::vector<E> out;
    while (out.size() < n) {
        auto e = co_await bounded(p.next_event());
        if (auto* x = e.template get_if<E>()) out.push_back(*x);
    }
    co_return out;
}

// "fork online message …": the kinds of worker id's events, in order.
template <class P>
std::string kinds_of(const std::vector<cluster::event<P>>& events, unsigned id) {
    std::string out;
    for (const auto& e : events)
        if (e.worker_id() == id) out += (out.empty() ? "" : " ") + std::string(kind_name(e.kind()));
    return out;
}

// "1 fork, 1 online, …": each event's worker and kind, in order.
template <class P>
std::string story_of(const std::vector<cluster::event<P>>& events) {
    std::string out;
    for (const auto& e : events)
        out += (out.empty() ? "" : ", ") + std::to_string(e.worker_id()) + " " + kind_name(e.kind());
    return out;
}

template <class E, class P>
std::vector<E> all_of(const std::vector<cluster::event<P>>& events) {
    std::vector<E> out;
    for (const auto& e : events)
        if (const auto* x = e.template get_if<E>()) out.push_back(*x);
    return out;
}

// The exit event that ends `events`.
template <class P>
const cluster::exit_event& exit_of(const std::vector<cluster::event<P>>& events) {
    REQUIRE(!events.empty());
    const auto* e = events.back().template get_if<cluster::exit_event>();
    REQUIRE(e);
    return *e;
}

// The first message in `events` that is a T; nullptr if none is.
template <class T, class P>
const T* find_message(const std::vector<cluster::event<P>>& events) {
    for (const auto& e : events)
        if (auto* m = e.template message<T>()) return m;
    return nullptr;
}

// The ids of the workers p lists, in its order.
template <class P>
std::vector<unsigned> listed_ids(const cluster::primary<P>& p) {
    std::vector<unsigned> ids;
    for (const auto* h : p.workers()) ids.push_back(h->id());
    return ids;
}

}  // namespace support
