// cluster::detail::event_queue: the primary's events on their way to primary_main —
// queued while it can take them, within a bound, dropped once it has returned — and what
// taking an exit does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <cluster/detail/pressure_log.hpp>
#include <cluster/detail/worker_table.hpp>
#include <cluster/events.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/task.hpp>
#include <cluster/overload.hpp>
#include <cluster/wire/codec.hpp>
#include <cluster/wire/protocol.hpp>

namespace cluster::detail {

class event_queue {
    using P = erased;

public:
    // `max_bytes`: primary_options::max_queued_bytes, which setup() may change.
    event_queue(worker_table& workers, overload_counts& counts, const std::size_t& max_bytes) noexcept
        : workers_(workers), counts_(counts), max_bytes_(max_bytes) {}

    // Once primary_main has returned nobody takes events: they are dropped, as Node drops
    // an event nobody listens to (and a worker's record goes at its exit).
    void report(event<P> e) {
        if (!taking_) {
            if (auto* x = e.template get_if<exit_event>()) forget(x->worker_id);
            return;
        }
        queue_.push(std::move(e));
        stay_within_bound();
    }

    void stop_taking() {
        taking_ = false;
        while (auto e = queue_.try_take()) (void)taken(std::move(e));
    }
    [[nodiscard]] bool taking() const noexcept { return taking_; }

    io::task<event<P>> next() {
        auto e = co_await queue_.take();
        co_return taken(std::move(e));
    }

    // The next event of that kind.
    io::task<event<P>> next_of(event_kind kind) {
        auto e = co_await queue_.take(
            [](const event<P>& candidate, std::uint64_t k) noexcept {
                return candidate.kind() == static_cast<event_kind>(k);
            },
            static_cast<std::uint64_t>(kind));
        co_return taken(std::move(e));
    }

    // The next message of the user's type whose id is type_id.
    io::task<event<P>> next_message(std::uint32_t type_id) {
        auto e = co_await queue_.take(
            [](const event<P>& candidate, std::uint64_t id) noexcept {
                const auto* m = candidate.template get_if<incoming<P>>();
                return m && m->value.type_id == id;
            },
            type_id);
        co_return taken(std::move(e));
    }

private:
    // What an event weighs toward the bound: its message's encoded bytes, if it has one.
    static std::size_t weigh(const event<P>& e) noexcept {
        const auto* m = e.template get_if<incoming<P>>();
        if (!m) return sizeof(event<P>);
        return sizeof(event<P>) + m->value.size;
    }

    // Past the bound the oldest messages go first: they are what a loop that awaits only
    // some kinds leaves behind, and they are the bulk. The worker's lifecycle events go only
    // once no message is left, oldest first; the newest event always stays.
    void stay_within_bound() {
        while (queue_.queued_cost() > max_bytes_ && queue_.size() > 1) {
            auto dropped = queue_.evict_first([](const event<P>& e) noexcept { return e.template is<incoming<P>>(); });
            if (!dropped) dropped = queue_.evict_first([](const event<P>&) noexcept { return true; });
            ++counts_.events_dropped;
            log_.hit("primary: events queued past max_queued_bytes (" + std::to_string(max_bytes_) +
                     "): dropped the oldest " + std::string(to_string(dropped->kind())) + " event");
            if (auto* x = dropped->template get_if<exit_event>()) forget(x->worker_id);
        }
    }

    event<P> taken(std::optional<event<P>> e) {
        if (!e)
            throw std::system_error(std::make_error_code(std::errc::operation_canceled), "cluster: event wait stopped");
        if (auto* x = e->template get_if<exit_event>()) forget(x->worker_id);
        return std::move(*e);
    }

    // Once its exit is taken, a worker's fork, online, listening and disconnect events still
    // queued are history: a loop that only takes exits must not pile them up (nor the record
    // they hold). Its messages, and what the supervisor decided about it, stay.
    void forget(unsigned id) {
        workers_.erase(id);
        queue_.erase_if([id](const event<P>& e) {
            switch (e.kind()) {
            case event_kind::fork:
            case event_kind::online:
            case event_kind::listening:
            case event_kind::disconnect: return e.worker_id() == id;
            default: return false;
            }
        });
    }

    worker_table& workers_;
    overload_counts& counts_;
    const std::size_t& max_bytes_;
    pressure_log log_;
    io::mailbox<event<P>> queue_{&weigh};
    bool taking_ = true;
};

}  // namespace cluster::detail
