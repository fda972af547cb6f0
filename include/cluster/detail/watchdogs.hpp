// cluster::detail watchdogs: what the primary watches in each worker on its own — heartbeats
// (a hung loop is killed), resident memory (too much is recycled), and a worker that left on
// its own but does not exit. Each ends when its worker exits.
#pragma once

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <utility>

#include <cluster/detail/worker_record.hpp>
#include <cluster/events.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/when_all.hpp>
#include <cluster/resident_memory.hpp>

namespace cluster::detail {

// Several beats per timeout, so one late beat is not a hang.
inline std::chrono::milliseconds heartbeat_interval(std::chrono::milliseconds timeout) noexcept {
    return std::max(std::chrono::milliseconds(1), timeout / 4);
}

// Runs `watch` until it ends or `r` exits, whichever comes first.
template <class Record>
io::task<void> until_exit(std::shared_ptr<Record> r, io::task<void> watch) {
    (void)co_await io::when_any(std::move(watch), io::when_set(r->exited));
}

// True once `r`'s loop has sent no heartbeat for `timeout`; false once its link ends first: a
// worker leaving is not hung while it finishes.
template <class Record>
io::task<bool> until_hung(std::shared_ptr<Record> r, std::chrono::milliseconds timeout) {
    for (;;) {
        const auto deadline = r->last_beat + timeout;
        if (Record::clock::now() < deadline) {
            auto slept = co_await io::sleep_until(deadline);
            if (!slept) co_return false;
        } else if (!r->is_connected()) {
            co_return false;
        } else if (r->link.has_unread()) {
            // We are behind, not the worker: its beats may be in what we have not read.
            auto slept = co_await io::sleep_for(heartbeat_interval(timeout));
            if (!slept) co_return false;
        } else {
            co_return true;
        }
    }
}

// A worker process whose loop sends no heartbeat for `timeout` is hung: SIGTERM, then
// SIGKILL after `grace`.
template <class Record>
io::task<void> watch_heartbeats(std::shared_ptr<Record> r, std::chrono::milliseconds timeout,
                                std::chrono::milliseconds grace) {
    const bool hung = co_await until_hung(r, timeout);
    if (!hung) co_return;
    r->reason = stop_reason::hung;
    (void)r->signal(SIGTERM);
    auto waited = co_await io::sleep_for(grace);
    if (waited) (void)r->signal(SIGKILL);
}

// max_memory: the worker's resident set, every `every`; above `limit`, over(r) is called.
template <class Record, class Over>
io::task<void> watch_memory(std::shared_ptr<Record> r, std::size_t limit, std::chrono::milliseconds every, Over over) {
    for (;;) {
        auto slept = co_await io::sleep_for(every);
        if (!slept) co_return;
        auto rss = resident_memory(r->pid);
        if (rss && *rss > limit) over(r);
    }
}

// A worker whose link ended without the primary asking (it disconnected itself) can no
// longer send heartbeats: it has `deadline` to exit, as one the primary disconnects, or it
// is hung and SIGKILLed. Otherwise its slot would never be filled again.
template <class Record>
io::task<void> watch_exit(std::shared_ptr<Record> r, std::chrono::milliseconds deadline) {
    auto exited = co_await io::with_timeout(io::when_set(r->exited), deadline);
    if (exited || r->retiring || r->is_dead()) co_return;
    if (r->reason == stop_reason::none) r->reason = stop_reason::hung;
    (void)r->signal(SIGKILL);
}

}  // namespace cluster::detail
