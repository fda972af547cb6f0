// cluster::io::doorbell: wakes the tasks waiting on one thread's loop from another thread — a
// completion posted to that loop's ring (IORING_OP_MSG_RING), or an eventfd it reads where refused.
#pragma once

#include <liburing.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>

#include <cluster/error.hpp>
#include <cluster/io/detail/parked.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::io {

// How a doorbell reaches the loop it wakes.
enum class wake_method {
    msg_ring,  // the ringing thread's ring posts a CQE to the waiting loop's ring (Linux 5.18+)
    eventfd,   // the ringing thread writes an eventfd the waiting loop has a read pending on
};

inline const char* to_string(wake_method m) noexcept { return m == wake_method::msg_ring ? "msg_ring" : "eventfd"; }

// What CLUSTER_WAKE names to force the fallback (tests, and a kernel that misbehaves).
inline constexpr const char* wake_method_env = "CLUSTER_WAKE";

namespace detail {

// A ring set up as io_context sets up its own: SINGLE_ISSUER | DEFER_TASKRUN, else plain.
inline bool small_ring(io_uring& ring) noexcept {
    io_uring_params p{};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(2, &ring, &p) == 0) return true;
    p = {};
    return io_uring_queue_init_params(2, &ring, &p) == 0;
}

// Whether this kernel delivers a MSG_RING between two rings like the loops': one attempt.
// A probe table would say the opcode exists, not that a DEFER_TASKRUN target accepts it.
inline bool msg_ring_works() noexcept {
    io_uring from{}, to{};
    if (!small_ring(from)) return false;
    if (!small_ring(to)) {
        io_uring_queue_exit(&from);
        return false;
    }
    constexpr std::uint64_t probe = 0x636c7573;
    io_uring_prep_msg_ring(io_uring_get_sqe(&from), to.ring_fd, 0, probe, 0);
    bool delivered = false;
    io_uring_cqe* sent = nullptr;
    if (io_uring_submit_and_wait(&from, 1) >= 0 && io_uring_peek_cqe(&from, &sent) == 0 && sent->res >= 0) {
        __kernel_timespec limit{.tv_sec = 1, .tv_nsec = 0};
        io_uring_cqe* got = nullptr;
        delivered = io_uring_wait_cqe_timeout(&to, &got, &limit) == 0 && got->user_data == probe;
    }
    io_uring_queue_exit(&to);
    io_uring_queue_exit(&from);
    return delivered;
}

// The ringing side's own CQE for a MSG_RING it sent: nothing to do unless the kernel refused,
// which the probe says it does not. A waiting loop that is never woken would hang silently:
// this says why and ends the process instead.
inline completion msg_ring_sent{[](completion*, int res, unsigned, bool) noexcept {
    if (res >= 0) return;
    std::fprintf(stderr, "cluster: IORING_OP_MSG_RING failed after the probe accepted it: %s (set %s=eventfd)\n",
                 std::strerror(-res), wake_method_env);
    std::abort();
}};

}  // namespace detail

// msg_ring where this kernel delivers it, else eventfd; decided once per process. CLUSTER_WAKE=
// eventfd forces the fallback.
inline wake_method probed_wake_method() {
    static const wake_method method = [] {
        const char* forced = std::getenv(wake_method_env);
        if (forced && std::strcmp(forced, "eventfd") == 0) return wake_method::eventfd;
        return detail::msg_ring_works() ? wake_method::msg_ring : wake_method::eventfd;
    }();
    return method;
}

// Made, used by wait() and destroyed on the thread whose loop it wakes; ring() may be called
// from any thread that has a loop of its own. One wake is in flight at most: ring() sends one
// only while a task waits and none is on its way, and its arrival wakes every waiting task,
// which look again at what they wait for.
class doorbell {
    struct waiter : detail::parked {
        doorbell& bell;
        explicit waiter(doorbell& b) noexcept : bell(b) {}
        bool await_ready() const noexcept { return false; }
        template <class Promise>
        void await_suspend(std::coroutine_handle<Promise> h) {
            park(bell.waiting_, h);
        }
        void await_resume() noexcept { (void)resumed(); }
    };

public:
    explicit doorbell(wake_method how = probed_wake_method())
        : method_(how), ctx_(&io_context::current_or_throw()), ring_fd_(ctx_->native_handle()) {
        if (method_ == wake_method::eventfd) {
            event_.reset(::eventfd(0, EFD_CLOEXEC));
            if (!event_) throw std::system_error(errno_code(errno), "cluster: eventfd for a doorbell");
        }
    }
    doorbell(const doorbell&) = delete;
    doorbell& operator=(const doorbell&) = delete;
    // A wake on its way is waited for: its CQE names this doorbell.
    ~doorbell() {
        std::unique_lock lock(mutex_);
        if (armed_ && method_ == wake_method::msg_ring) ctx_->forget_remote();
        armed_ = false;
        const bool pending = method_ == wake_method::msg_ring ? sent_ : read_pending_;
        lock.unlock();
        if (pending) ctx_->cancel_and_wait(&hook_, arrived_);
    }

    [[nodiscard]] wake_method method() const noexcept { return method_; }

    // A task is about to wait: the next ring() sends a wake. The caller looks at what it waits
    // for and arms under the lock the ringing thread holds to change it and ring: then no ring
    // falls between the look and the wait. Then it awaits wait(), before its loop turns again.
    void arm() {
        const std::lock_guard lock(mutex_);
        if (armed_ || sent_) return;  // one is awaited, or on its way: its arrival wakes this task too
        armed_ = true;
        arrived_ = false;
        if (method_ == wake_method::msg_ring) return ctx_->expect_remote();
        if (read_pending_) return;
        read_pending_ = true;
        io_uring_prep_read(ctx_->sqe(&hook_), event_.get(), &count_, sizeof count_, 0);
    }

    // On the owner's thread: wakes the tasks waiting now, without a ring (the thing they
    // wait for is going away).
    void wake_here() noexcept { waiting_.wake_all(); }

    // Suspends the calling task until the wake that arm() asked for arrives.
    [[nodiscard]] waiter wait() noexcept { return waiter{*this}; }

    // Wakes the tasks waiting, if any, from any thread with a loop. Looks first without the lock:
    // arm() and ring() are called under the caller's own lock (see arm()), which orders the
    // look after any arm() that came first; a producer that keeps ahead of its consumer rings
    // at every value, and finds nobody waiting.
    void ring() {
        if (!armed_.load(std::memory_order_relaxed)) return;
        const std::lock_guard lock(mutex_);
        if (!armed_) return;
        armed_ = false;
        sent_ = true;
        // A loop that spins takes the wake from memory: neither thread enters the kernel. Not an
        // eventfd's, whose read stays in flight until the write it waits for.
        if (method_ == wake_method::msg_ring && ctx_->leave_while_spinning(&hook_)) return;
        if (method_ == wake_method::eventfd) {
            const std::uint64_t one = 1;
            (void)!::write(event_.get(), &one, sizeof one);
            return;
        }
        // Submitted at once, under the lock: the waiting loop's ring cannot go meanwhile. It
        // posts no CQE here unless it fails (which ends the process): this loop waits for none,
        // and is not woken by one for nothing.
        auto& from = io_context::current_or_throw();
        io_uring_sqe* sqe = from.sqe(&detail::msg_ring_sent);
        io_uring_prep_msg_ring(sqe, ring_fd_, 0,
                               reinterpret_cast<std::uintptr_t>(static_cast<detail::completion*>(&hook_)), 0);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
        from.forget_remote();
        from.submit_now();
    }

private:
    void on_wake(int, bool resume) {
        ctx_->note_remote_wake();
        {
            const std::lock_guard lock(mutex_);
            sent_ = false;
            read_pending_ = false;
            arrived_ = true;
        }
        if (resume) waiting_.wake_all();
    }

    const wake_method method_;
    io_context* const ctx_;
    const int ring_fd_;
    unique_fd event_;            // eventfd: what ring() writes and this loop reads
    std::uint64_t count_ = 0;    // eventfd: the read's buffer
    bool read_pending_ = false;  // eventfd: a read of it is in flight (the owner's thread only)
    std::mutex mutex_;
    std::atomic<bool> armed_ = false;  // a task waits and no wake is on its way: ring() sends one
    bool sent_ = false;                // ring() sent a wake that has not arrived yet
    bool arrived_ = false;             // for the destructor's wait
    detail::parked_list waiting_;
    io::detail::member_completion<doorbell, &doorbell::on_wake> hook_{this};
};

}  // namespace cluster::io
