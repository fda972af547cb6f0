// cluster::job_pool<P, Job, Result>: jobs the primary hands its workers as requests — a few in
// flight per worker, re-sent when a worker dies or does not answer, each result handed back once.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/io/detail/notice.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/primary.hpp>
#include <cluster/result.hpp>
#include <cluster/wire/protocol.hpp>
#include <cluster/worker_handle.hpp>

namespace cluster {

// The order in which a job_pool hands results back.
enum class job_order {
    submission,  // the order the jobs were submitted in: a result waits for those before it
    completion,  // as they come
};

struct job_pool_options {
    // Attempts a worker holds at once. 0: as many as keep it busy for about 2 ms, from how
    // fast it answers (up to 256): for workers that do one job at a time. A worker that does
    // many at once, waiting on I/O, wants a number.
    unsigned in_flight = 0;
    std::chrono::milliseconds timeout{0};  // an attempt not answered by then goes to a worker again; 0: never
    unsigned max_attempts = 3;             // attempts before a job fails for good; 0: no limit
    job_order order = job_order::submission;
    std::size_t max_queued = 1024;  // jobs waiting for a worker (at least 1): submit() waits past it
};

// Every job submitted is answered by a worker, or fails for good, exactly once: a job whose
// worker died or timed out is sent again, perhaps to another worker, so it may run more than
// once, but an answer that comes after its attempt timed out is dropped. See docs/cluster.md.
template <class P, wire::message_of<P> Job, wire::message_of<P> Result>
class job_pool {
public:
    struct done {
        std::uint64_t job = 0;  // the number submit() gave it: from 0, in submission order
        result<Result> value;   // the worker's answer, or why the job failed for good
    };

    // Starts feeding p's workers, the ones it has and the ones scaling adds. Throws
    // std::invalid_argument for a max_queued of 0.
    explicit job_pool(primary<P>& p, job_pool_options o = {}) : p_(p), options_(o) {
        if (options_.max_queued == 0) throw std::invalid_argument("cluster: job_pool needs a max_queued of at least 1");
        tasks_.spawn(feed_slots(*this));
        if (options_.timeout.count() > 0) tasks_.spawn(watch_deadlines(*this));
    }
    job_pool(const job_pool&) = delete;
    job_pool& operator=(const job_pool&) = delete;
    // Jobs still waiting or in flight are abandoned: their answers, if any come, are dropped.
    ~job_pool() = default;

    // Queues `job`, once fewer than max_queued jobs wait for a worker, and returns its number.
    // Errors: pool_closed after close(), cluster_stopping once the primary is stopping (the
    // job is not taken), operation_canceled if the awaiting task is asked to stop first.
    io::task<result<std::uint64_t>> submit(const Job& job) {
        for (;;) {
            if (closed_) co_return make_error_code(errc::pool_closed);
            if (p_.stopping()) co_return make_error_code(errc::cluster_stopping);
            if (queue_.size() < options_.max_queued) break;
            auto woken = co_await room_.next();
            if (!woken) co_return std::make_error_code(std::errc::operation_canceled);
        }
        const std::uint64_t number = submitted_++;
        queue_.push(entry{number, job, 0});
        co_return number;
    }

    // No more jobs: the ones submitted are still done, and next() ends after their results.
    void close() {
        closed_ = true;
        room_.notify();
        finish_if_done();
    }

    // The next result, as job_pool_options::order says; nothing once the pool is closed and
    // every result has been handed back, or if the awaiting task is asked to stop first.
    [[nodiscard]] auto next() noexcept { return results_.take(); }

    // Jobs waiting for a worker.
    [[nodiscard]] std::size_t queued() const noexcept { return queue_.size(); }
    // Jobs sent to a worker and not answered yet.
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
    // Jobs submitted and not handed back yet: waiting, in flight, or waiting for an earlier result.
    [[nodiscard]] std::uint64_t outstanding() const noexcept { return submitted_ - finished_; }
    // Attempts that failed (the worker died, timed out, answered with another type) and were sent again.
    [[nodiscard]] std::uint64_t resent() const noexcept { return resent_; }

private:
    using handle = worker_handle<P>;
    using clock = std::chrono::steady_clock;

    struct entry {
        std::uint64_t number;
        Job job;
        unsigned attempts;
    };

    // With in_flight 0: the work a worker is given ahead, and the most attempts it holds.
    static constexpr clock::duration busy_ahead = std::chrono::milliseconds(2);
    static constexpr unsigned max_paced = 256;

    // A feeder's attempt under way, for the one timer of the pool: a timer per request would
    // cost more than the primary's whole share of a small job.
    struct lane {
        clock::time_point deadline = clock::time_point::max();  // max: no attempt under way
        std::stop_source cancel;                                // ends the attempt past its deadline
    };

    // A slot's feeders: the worker they feed, how many of them may have an attempt under way,
    // and how fast the worker answers. One feeder at a time waits for the slot's worker.
    struct slot_feed {
        std::list<lane> lanes;
        std::shared_ptr<handle> worker;  // the slot's worker when last looked up
        bool looking = false;            // a feeder waits for the slot's worker
        bool gone = false;               // the slot was given up, or the primary is stopping
        unsigned allowed = 1;
        clock::duration per_job{};  // a moving average of the time the slot's worker takes for a job
        clock::time_point last_answer{};
        io::detail::notice changed;  // worker, gone or allowed changed
    };

    // A feeder's lane in its slot's feed, for as long as the feeder lives; the last one gone
    // takes the feed with it.
    class lane_lease {
    public:
        lane_lease(std::map<unsigned, slot_feed>& feeds, unsigned slot)
            : feeds_(feeds), feed_(feeds.find(slot)), lane_(feed_->second.lanes.emplace(feed_->second.lanes.end())) {}
        lane_lease(const lane_lease&) = delete;
        lane_lease& operator=(const lane_lease&) = delete;
        ~lane_lease() {
            feed_->second.lanes.erase(lane_);
            if (feed_->second.lanes.empty()) feeds_.erase(feed_);
        }
        [[nodiscard]] slot_feed& feed() const noexcept { return feed_->second; }
        [[nodiscard]] lane& operator*() const noexcept { return *lane_; }

    private:
        std::map<unsigned, slot_feed>& feeds_;
        typename std::map<unsigned, slot_feed>::iterator feed_;
        typename std::list<lane>::iterator lane_;
    };

    // Feeders for the slots there are and those scaling adds. Once the primary is stopping, no
    // worker will take the jobs still waiting.
    static io::task<void> feed_slots(job_pool& self) {
        std::vector<unsigned> known;
        for (;;) {
            auto now = co_await self.p_.slots_changed(known);
            if (!now) {
                if (now.error() == errc::cluster_stopping) self.fail_waiting();
                co_return;
            }
            for (unsigned slot : *now)
                if (std::find(known.begin(), known.end(), slot) == known.end()) self.start_feeding(slot);
            known = std::move(*now);
        }
    }

    void start_feeding(unsigned slot) {
        const unsigned lanes = options_.in_flight != 0 ? options_.in_flight : max_paced;
        feeds_[slot].allowed = options_.in_flight != 0 ? options_.in_flight : 1;
        for (unsigned i = 0; i < lanes; ++i) tasks_.spawn(feed(*this, slot, i));
    }

    // Sends jobs to the worker serving `slot`, one at a time, while the slot's feed allows
    // `index` an attempt, until the slot is given up.
    static io::task<void> feed(job_pool& self, unsigned slot, unsigned index) {
        const lane_lease lease(self.feeds_, slot);
        slot_feed& f = lease.feed();
        std::shared_ptr<handle> worker;  // held while attempts go to it
        for (;;) {
            const bool current = f.worker && self.p_.serving(slot) == f.worker.get();
            if (current && index < f.allowed) {
                worker = f.worker;
                auto e = co_await self.queue_.take();
                if (!e) co_return;
                self.room_.notify();
                if (self.p_.serving(slot) != worker.get()) {  // replaced while this feeder waited for a job
                    self.queue_.push_front(std::move(*e));
                    continue;
                }
                co_await self.attempt(*worker, f, *lease, std::move(*e));
            } else if (!current && !f.looking && !f.gone) {
                co_await self.look_for_worker(f, slot);
            } else {
                if (f.gone) co_return;
                auto woken = co_await f.changed.next();
                if (!woken) co_return;
            }
        }
    }

    // Waits for the slot's worker, for every feeder of the slot.
    io::task<void> look_for_worker(slot_feed& f, unsigned slot) {
        f.looking = true;
        auto found = co_await p_.worker_in_slot(slot);
        f.looking = false;
        if (found)
            f.worker = std::move(*found);
        else
            f.gone = true;
        f.changed.notify();
    }

    // The request waits as long as the worker lives: the watchdog ends it at its deadline.
    io::task<void> attempt(handle& h, slot_feed& f, lane& l, entry e) {
        ++e.attempts;
        const auto sent = clock::now();
        if (options_.timeout.count() > 0) {
            l.deadline = sent + options_.timeout;
            deadline_set_.notify();
        }
        ++in_flight_;
        auto answer = co_await h.template request<Result>(e.job, std::chrono::milliseconds::max())
                          .with_stop_token(l.cancel.get_token());
        --in_flight_;
        l.deadline = clock::time_point::max();
        const bool expired = l.cancel.stop_requested();
        if (expired) l.cancel = std::stop_source{};
        if (answer) {
            pace(f, sent);
            co_return hand_back(e.number, std::move(*answer));
        }
        const std::error_code why = expired ? std::make_error_code(std::errc::timed_out) : answer.error();
        if (p_.stopping()) co_return hand_back(e.number, make_error_code(errc::cluster_stopping));
        if (options_.max_attempts != 0 && e.attempts >= options_.max_attempts) co_return hand_back(e.number, why);
        ++resent_;
        queue_.push_front(std::move(e));
    }

    // An answer to an attempt sent at `sent`: the worker was busy with it from then, or from
    // its answer before, if that came later. With in_flight 0, the feed allows what the
    // worker does in busy_ahead.
    void pace(slot_feed& f, clock::time_point sent) {
        const auto now = clock::now();
        const auto took = now - std::max(sent, f.last_answer);
        f.last_answer = now;
        f.per_job = f.per_job == clock::duration::zero() ? took : f.per_job + (took - f.per_job) / 8;
        if (options_.in_flight != 0) return;
        const auto ahead = busy_ahead / std::max(f.per_job, clock::duration(1));
        const auto allowed = static_cast<unsigned>(std::clamp<decltype(ahead)>(ahead, 1, max_paced));
        if (allowed > f.allowed) f.changed.notify();
        f.allowed = allowed;
    }

    // Ends the attempts that pass their deadline, sleeping until the earliest. Deadlines are
    // set in the order attempts start, so none set while it sleeps comes before its wake.
    static io::task<void> watch_deadlines(job_pool& self) {
        for (;;) {
            const auto earliest = self.earliest_deadline();
            if (earliest == clock::time_point::max()) {
                auto woken = co_await self.deadline_set_.next();
                if (!woken) co_return;
                continue;
            }
            auto slept = co_await io::sleep_until(earliest);
            if (!slept) co_return;
            const auto now = clock::now();
            for (auto& [slot, f] : self.feeds_)
                for (auto& l : f.lanes)
                    if (l.deadline <= now) l.cancel.request_stop();
        }
    }

    [[nodiscard]] clock::time_point earliest_deadline() const noexcept {
        auto earliest = clock::time_point::max();
        for (const auto& [slot, f] : feeds_)
            for (const auto& l : f.lanes) earliest = std::min(earliest, l.deadline);
        return earliest;
    }

    void fail_waiting() {
        while (auto e = queue_.try_take()) hand_back(e->number, make_error_code(errc::cluster_stopping));
        room_.notify();
    }

    void hand_back(std::uint64_t number, result<Result> value) {
        ++finished_;
        if (options_.order == job_order::completion) {
            results_.push(done{number, std::move(value)});
        } else {
            held_.emplace(number, std::move(value));
            for (auto it = held_.begin(); it != held_.end() && it->first == next_in_order_; it = held_.begin()) {
                results_.push(done{it->first, std::move(it->second)});
                held_.erase(it);
                ++next_in_order_;
            }
        }
        finish_if_done();
    }

    // Closed, and every result handed back: next() ends, and the feeders with it.
    void finish_if_done() {
        if (!closed_ || finished_ != submitted_) return;
        results_.close();
        tasks_.request_stop();
    }

    primary<P>& p_;
    const job_pool_options options_;
    io::mailbox<entry> queue_;             // waiting for a worker; an attempt that failed goes first
    io::detail::notice room_;              // a job left the queue, or submit() must give up
    std::map<unsigned, slot_feed> feeds_;  // by slot
    io::detail::notice deadline_set_;
    io::mailbox<done> results_;
    std::map<std::uint64_t, result<Result>> held_;  // submission order: results waiting for an earlier one
    std::uint64_t next_in_order_ = 0;
    std::uint64_t submitted_ = 0, finished_ = 0, resent_ = 0;
    std::size_t in_flight_ = 0;
    bool closed_ = false;
    io::scope tasks_;  // last: its tasks use the rest
};

}  // namespace cluster
