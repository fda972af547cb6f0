// cluster::io::thread_pipe<T>: values moved one way between two threads' loops, in order — a
// bounded queue, each side's tasks woken by a doorbell of their own; the end of the stream both ways.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/io/doorbell.hpp>
#include <cluster/io/task.hpp>
#include <cluster/result.hpp>

namespace cluster::io {

// Shared by its two threads (a shared_ptr each). Each side opens its doorbell on its own
// thread before it uses the pipe, and closes it there before its loop goes: producer_open()
// and producer_close(), consumer_open() and consumer_close(). Other threads may push too (a
// thread worker's send_to() another): each waits for room on a doorbell of its own thread's,
// which it takes back with forget_producer() before the doorbell goes.
template <class T>
class thread_pipe {
public:
    // What a value weighs toward the high-water mark: its bytes, say.
    using cost_fn = std::size_t (*)(const T&) noexcept;

    // Values take_all() took at once, read front to back on the consumer's thread. Its storage
    // and the pipe's trade places at each burst, so neither side allocates once both have grown,
    // and no block allocated on one thread is freed on the other.
    class batch {
    public:
        [[nodiscard]] bool empty() const noexcept { return next_ == items_.size(); }
        T& front() noexcept { return items_[next_]; }
        void pop_front() noexcept {
            if (++next_ == items_.size()) clear();
        }

    private:
        friend class thread_pipe;
        void clear() noexcept {
            items_.clear();
            next_ = 0;
        }
        std::vector<T> items_;
        std::size_t next_ = 0;
    };

    // Past `high_water` weighed (cost), a sender waits for room, as a channel's does.
    explicit thread_pipe(std::size_t high_water, cost_fn cost, wake_method how = probed_wake_method()) noexcept
        : high_water_(high_water), cost_(cost), method_(how) {}
    thread_pipe(const thread_pipe&) = delete;
    thread_pipe& operator=(const thread_pipe&) = delete;

    // ---- the producer's side, on its thread ----

    void producer_open() {
        const std::lock_guard lock(mutex_);
        room_.emplace(method_);
    }
    // No more values come: the consumer takes what is queued, then nothing.
    void producer_close() {
        const std::lock_guard lock(mutex_);
        closed_ = true;
        if (room_) room_->wake_here();
        room_.reset();
        ring_others();
        if (data_) data_->ring();
    }

    // Queues v whatever is queued already; channel_closed once this side closed, peer_gone
    // once the consumer's did (v is dropped then).
    std::error_code push(T&& v) {
        const std::lock_guard lock(mutex_);
        if (closed_) return make_error_code(errc::channel_closed);
        if (consumer_gone_) return make_error_code(errc::peer_gone);
        set_cost(queued_cost_ + weigh(v));
        items_.push_back(std::move(v));
        ++pushed_;
        if (data_) data_->ring();
        return {};
    }

    // Read without the lock: a sender asks after every push, and a stale answer only sends it
    // to wait_for_room(), which looks again under the lock, or lets one more value in.
    [[nodiscard]] bool full() const noexcept { return full_.load(std::memory_order_relaxed); }

    // `queued` (push()'s result) once the queue is back under the high-water mark; peer_gone
    // if the consumer goes first.
    task<result<void>> wait_for_room(std::error_code queued) {
        if (queued) co_return queued;
        for (;;) {
            std::unique_lock lock(mutex_);
            if (closed_) co_return make_error_code(errc::channel_closed);
            if (consumer_gone_) co_return make_error_code(errc::peer_gone);
            if (queued_cost_ <= high_water_) co_return result<void>{};
            room_->arm();
            auto ring = room_->wait();
            lock.unlock();
            co_await ring;
        }
    }

    // For another producer: true if there is room (or the pipe takes no more values, which its
    // next push() says); else `mine`, its own thread's doorbell, is armed, to be rung with the
    // producer's once there is room, and the caller awaits mine.wait() at once.
    bool room_or_arm(doorbell& mine) {
        const std::lock_guard lock(mutex_);
        if (closed_ || consumer_gone_ || queued_cost_ <= high_water_) return true;
        mine.arm();
        if (std::find(others_.begin(), others_.end(), &mine) == others_.end()) others_.push_back(&mine);
        return false;
    }

    // Whether values are still taken: neither side has closed.
    [[nodiscard]] bool taking() const {
        const std::lock_guard lock(mutex_);
        return !closed_ && !consumer_gone_;
    }

    // Another producer's doorbell is going: the pipe rings it no more.
    void forget_producer(doorbell& mine) {
        const std::lock_guard lock(mutex_);
        std::erase(others_, &mine);
    }

    // ---- the consumer's side, on its thread ----

    void consumer_open() {
        const std::lock_guard lock(mutex_);
        data_.emplace(method_);
    }
    // Takes no more: what is queued is dropped, and the producer's sends fail with peer_gone.
    void consumer_close() {
        std::vector<T> dropped;
        const std::lock_guard lock(mutex_);
        consumer_gone_ = true;
        dropped.swap(items_);
        next_ = 0;
        set_cost(0);
        if (data_) data_->wake_here();
        data_.reset();
        ring_room();
    }

    // The next value; nothing once the producer closed and all it queued was taken, or once
    // this side closed.
    task<std::optional<T>> receive() {
        for (;;) {
            std::unique_lock lock(mutex_);
            if (auto v = take_locked()) co_return v;
            if (closed_ || consumer_gone_) co_return std::nullopt;
            data_->arm();
            auto ring = data_->wait();
            lock.unlock();
            co_await ring;
        }
    }

    // The next value if one is queued: never waits.
    std::optional<T> try_receive() {
        const std::lock_guard lock(mutex_);
        return take_locked();
    }

    // Every value queued, appended to `into` in order, under one lock: a consumer that keeps
    // up takes a burst at once instead of locking for each value. Never waits.
    void take_all(batch& into) {
        const std::lock_guard lock(mutex_);
        if (next_ == items_.size()) return;
        const bool was_full = queued_cost_ > high_water_;
        set_cost(0);
        if (was_full) ring_room();
        if (into.empty()) {
            into.clear();
            into.items_.swap(items_);
            into.next_ = std::exchange(next_, 0);
            return;
        }
        into.items_.erase(into.items_.begin(), into.items_.begin() + static_cast<std::ptrdiff_t>(into.next_));
        into.next_ = 0;
        for (auto i = next_; i < items_.size(); ++i) into.items_.push_back(std::move(items_[i]));
        items_.clear();
        next_ = 0;
    }

    // Whether values wait to be taken.
    [[nodiscard]] bool has_queued() const {
        const std::lock_guard lock(mutex_);
        return next_ != items_.size();
    }
    // How many values were ever pushed (for statistics; any thread).
    [[nodiscard]] std::uint64_t pushed() const {
        const std::lock_guard lock(mutex_);
        return pushed_;
    }

private:
    std::size_t weigh(const T& v) const noexcept { return cost_ ? cost_(v) : 1; }

    // Under the lock.
    void set_cost(std::size_t cost) noexcept {
        queued_cost_ = cost;
        full_.store(cost > high_water_ && !consumer_gone_, std::memory_order_relaxed);
    }

    std::optional<T> take_locked() {
        if (next_ == items_.size()) return std::nullopt;
        std::optional<T> v(std::move(items_[next_]));
        if (++next_ == items_.size()) {
            items_.clear();
            next_ = 0;
        } else if (next_ >= compact_after && 2 * next_ >= items_.size()) {
            // A consumer taking one at a time from a producer that keeps ahead: the values
            // taken leave the vector's front, a move each, paid for by as many takes before.
            items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(next_));
            next_ = 0;
        }
        const bool was_full = queued_cost_ > high_water_;
        set_cost(queued_cost_ - weigh(*v));
        if (was_full && queued_cost_ <= high_water_) ring_room();
        return v;
    }

    // Under the lock: every producer waiting for room looks again.
    void ring_room() {
        if (room_) room_->ring();
        ring_others();
    }
    void ring_others() {
        for (doorbell* other : others_) other->ring();
        others_.clear();
    }

    const std::size_t high_water_;
    const cost_fn cost_;
    const wake_method method_;
    mutable std::mutex mutex_;
    static constexpr std::size_t compact_after = 64;
    std::vector<T> items_;  // taken from next_ on
    std::size_t next_ = 0;
    std::size_t queued_cost_ = 0;
    std::atomic<bool> full_ = false;  // queued_cost_ > high_water_ && !consumer_gone_
    std::uint64_t pushed_ = 0;
    bool closed_ = false;            // the producer sends no more
    bool consumer_gone_ = false;     // the consumer takes no more
    std::optional<doorbell> data_;   // the consumer's: a value came, or the end
    std::optional<doorbell> room_;   // the producer's: room came, or the consumer went
    std::vector<doorbell*> others_;  // other producers' waiting for room: rung with room_, then forgotten
};

}  // namespace cluster::io
