// cluster::http::watchdog: the deadlines of all of a server's connections, kept by one
// coarse clock instead of a timer per read.
#pragma once

#include <cluster/http/connection.hpp>
#include <cluster/http/limits.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>

#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <stop_token>

namespace cluster::http {

// Deadlines for all the connections of a server, from one timer. A linked timeout on
// every read costs a tenth of the throughput; instead each connection notes when its read
// began, in ticks of a coarse clock, and on each tick the watchdog cancels the reads that
// have waited too long: read_timeout inside a request, keep_alive_timeout for the next one.
// Writes, likewise, get read_timeout. Each connection also notes the tick its request
// began, so the same tick cancels a read of a request past header_timeout or
// request_timeout, however recently its last byte came; that connection answers 408.
//
// Draining closes the connections at rest, but a client may be sending its next request
// on one at that very moment, and would lose it. So only those at rest for a whole tick
// are closed; a busy one gets its next request answered with Connection: close instead.
class watchdog {
public:
    static constexpr std::chrono::milliseconds tick{250};

    // One connection's registration, for as long as it lives.
    class watch {
    public:
        explicit watch(watchdog& dog) noexcept : dog_(dog) { dog_.link(*this); }
        watch(const watch&) = delete;
        watch& operator=(const watch&) = delete;
        ~watch() { dog_.unlink(*this); }

        // Call before each read or write, with the connection's requests_begun(); it
        // answers the token returned.
        [[nodiscard]] std::stop_token begin(waiting what, std::uint64_t requests_begun) {
            since_ = dog_.now_;
            waiting_ = what;
            // The request began in the bytes just read, so within this tick.
            if (requests_begun != request_) {
                request_ = requests_begun;
                request_since_ = dog_.now_;
            }
            return cancel_.get_token();
        }

        // Whether the token was cancelled because the request took too long, not a read:
        // then the client is owed a 408, and the watch is armed again to send it.
        [[nodiscard]] bool request_timed_out() {
            if (!overdue_) return false;
            overdue_ = false;
            cancel_ = std::stop_source();
            return true;
        }

    private:
        friend class watchdog;
        watchdog& dog_;
        watch* prev_ = nullptr;
        watch* next_ = nullptr;
        std::stop_source cancel_;
        std::uint64_t since_ = 0;
        std::uint64_t request_ = 0;
        std::uint64_t request_since_ = 0;
        waiting waiting_ = waiting::first_request;
        bool overdue_ = false;
    };

    watchdog(const limits& l, std::stop_token drain)
        : keep_alive_ticks_(ticks(l.keep_alive_timeout)), read_ticks_(ticks(l.read_timeout)),
          header_ticks_(deadline_ticks(l.header_timeout)), request_ticks_(deadline_ticks(l.request_timeout)),
          drain_(std::move(drain)) {
        on_drain_.emplace(drain_, drain_callback{this});
    }
    watchdog(const watchdog&) = delete;  // the callback and the watches point at it
    watchdog& operator=(const watchdog&) = delete;

    // The clock: runs until its task is asked to stop.
    static io::task<void> run(watchdog& self) {
        for (;;) {
            auto slept = co_await io::sleep_for(tick);
            if (!slept) co_return;
            ++self.now_;
            self.cancel_expired();
        }
    }

private:
    struct drain_callback {
        watchdog* self;
        void operator()() const noexcept { self->cancel_expired(); }
    };

    static std::uint64_t ticks(std::chrono::milliseconds d) noexcept {
        return static_cast<std::uint64_t>((d + tick - std::chrono::milliseconds(1)) / tick);
    }
    // As Node's: 0 turns the deadline off.
    static std::uint64_t deadline_ticks(std::chrono::milliseconds d) noexcept {
        return d.count() > 0 ? ticks(d) : std::numeric_limits<std::uint64_t>::max();
    }

    [[nodiscard]] bool expired(const watch& w) const noexcept {
        // Two ticks of the clock: a whole tick of time at least.
        const std::uint64_t waited = now_ - w.since_;
        if (w.waiting_ == waiting::handler || w.waiting_ == waiting::upgraded) return false;
        if (w.waiting_ == waiting::rest_of_head || w.waiting_ == waiting::rest_of_body ||
            w.waiting_ == waiting::client_to_read)
            return waited > read_ticks_;
        if (w.waiting_ == waiting::at_rest && waited >= 2 && drain_.stop_requested()) return true;
        return waited > keep_alive_ticks_;
    }

    // Only a read of the request: a write of an earlier answer has read_timeout, and the
    // read after it is caught on the next tick.
    [[nodiscard]] bool overdue(const watch& w) const noexcept {
        if (w.waiting_ != waiting::rest_of_head && w.waiting_ != waiting::rest_of_body) return false;
        const std::uint64_t taken = now_ - w.request_since_;
        return taken > request_ticks_ || (w.waiting_ == waiting::rest_of_head && taken > header_ticks_);
    }

    // Cancelling only asks the ring: no read completes, and no watch leaves, meanwhile.
    void cancel_expired() noexcept {
        for (watch* w = head_; w; w = w->next_) {
            if (overdue(*w)) w->overdue_ = true;
            if (w->overdue_ || expired(*w)) w->cancel_.request_stop();
        }
    }

    void link(watch& w) noexcept {
        w.next_ = head_;
        if (head_) head_->prev_ = &w;
        head_ = &w;
    }
    void unlink(watch& w) noexcept {
        if (w.prev_)
            w.prev_->next_ = w.next_;
        else
            head_ = w.next_;
        if (w.next_) w.next_->prev_ = w.prev_;
    }

    std::uint64_t keep_alive_ticks_;
    std::uint64_t read_ticks_;
    std::uint64_t header_ticks_;
    std::uint64_t request_ticks_;
    std::stop_token drain_;
    std::optional<std::stop_callback<drain_callback>> on_drain_;
    watch* head_ = nullptr;
    std::uint64_t now_ = 0;
};

}  // namespace cluster::http
