// cluster::io::io_context's definitions: the ring, its loop and its submissions. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/io/io_context.hpp>

#include <sched.h>
#include <sys/eventfd.h>

#include <atomic>

#if defined(__SANITIZE_THREAD__)
#define CLUSTER_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CLUSTER_THREAD_SANITIZER 1
#endif
#endif
#if defined(CLUSTER_THREAD_SANITIZER)
#include <sanitizer/tsan_interface.h>
#endif

namespace cluster::io {

namespace detail {

// liburing maps and unmaps a ring with raw system calls, which ThreadSanitizer does not see: a
// ring mapped where a ring of a thread that has gone was would look to it like that thread's
// memory, touched by two threads with nothing between. Each ring's teardown hands its memory
// over to whichever ring is set up next.
#if defined(CLUSTER_THREAD_SANITIZER)
inline char ring_memory_handover;
inline void ring_memory_released() noexcept { __tsan_release(&ring_memory_handover); }
inline void ring_memory_taken() noexcept { __tsan_acquire(&ring_memory_handover); }
#else
inline void ring_memory_released() noexcept {}
inline void ring_memory_taken() noexcept {}
#endif

}  // namespace detail

CLUSTER_DECL io_context::io_context(io_context_options options) : owner_pid_(::getpid()), spin_(options.spin) {
    forget_in_forked_children();
    setup(options);
    previous_ = current_;
    current_ = this;
}

CLUSTER_DECL io_context::~io_context() {
    if (current_ == this) current_ = previous_;
    if (::getpid() != owner_pid_) {
        // A forked child: the ring's memory is not mapped here (io_uring_ring_dontfork);
        // only the descriptor was inherited, and fork() closed it unless the child was
        // made without pthread_atfork's handlers (a raw clone).
        if (ring_.ring_fd >= 0) ::close(ring_.ring_fd);
        return;
    }
    drain();
    // Frees this thread's registration slot now, not at thread exit (liburing 2.3's
    // queue_exit does the same; this does not rely on it). Like the rest of the
    // context, it assumes destruction on the thread that created it: the slot is that
    // thread's.
    if (ring_registered_) (void)io_uring_unregister_ring_fd(&ring_);
    io_uring_queue_exit(&ring_);
    detail::ring_memory_released();
}

CLUSTER_DECL io_context& io_context::current_or_throw() {
    if (!current_)
        throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                                "cluster: no io_context on this thread (create one, or use sync_wait)");
    return *current_;
}

CLUSTER_DECL void io_context::cancel_and_wait(detail::completion* c, bool& finished) {
    // Its CQE may have left the ring already and be waiting its turn in stashed_.
    const auto mine = [c](const detail::cqe_copy& e) { return e.user_data == reinterpret_cast<std::uintptr_t>(c); };
    for (detail::cqe_copy e; stashed_.take_first(mine, e);) settle(e, false);
    if (finished) return;
    cancel(c);
    while (!finished) {
        io_uring_submit_and_wait(&ring_, 1);
        for (const auto& e : take_cqes()) {
            if (e.user_data == reinterpret_cast<std::uintptr_t>(c))
                settle(e, false);
            else
                stashed_.push_back(e);
        }
    }
}

CLUSTER_DECL void io_context::cancel_defer(detail::completion* c) noexcept {
    std::erase(deferred_, c);
    std::replace(running_deferred_.begin(), running_deferred_.end(), c, static_cast<detail::completion*>(nullptr));
}

CLUSTER_DECL void io_context::run() {
    stopped_ = false;
    while (!stopped_ && !idle()) run_once();
}

CLUSTER_DECL void io_context::run_once(std::coroutine_handle<> until) {
    // A loop run from inside another loop's coroutine hands the trampoline back when
    // it returns, so nothing is ever posted to a loop that has gone.
    stay_out_of_forked_child();
    const detail::trampoline::saved outer_trampoline;
    CLUSTER_MARK_STACK_BASE();
    ++turns_;
    install_trampoline();
    resume_ready();
    dispatch_stashed();
    run_deferred(true);
    // A hook may have deferred another (a woken sender queued more): that one must
    // run next turn, not after whatever completion the kernel delivers next.
    const bool busy = !ready_.empty() || !deferred_.empty();
    if (busy || stopped_ || (until && until.done())) {
        if (busy && external_) external_->poll();
        if (kernel_has_work()) submit_and_get_events();
    } else if (external_) {
        wait_in_attached_loop();
    } else if (in_flight_ > 0 && woken_remotely_ && spin_for_completions()) {
        if (kernel_has_work()) submit_and_get_events();
    } else if (in_flight_ > 0) {
        int r;
        do r = io_uring_submit_and_wait(&ring_, 1);
        while (r == -EINTR);
        if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -ETIME) throw_errno(-r, "io_uring_submit_and_wait");
    }
    reap();
}

CLUSTER_DECL void io_context::attach(external_loop& loop) {
    if (external_ && external_ != &loop)
        throw std::system_error(errno_code(EBUSY), "cluster: another loop already shares this io_context's thread");
    external_ = &loop;
}

CLUSTER_DECL int io_context::notification_fd() {
    stay_out_of_forked_child();
    if (notification_) return notification_.get();
    unique_fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) throw_errno(errno, "eventfd for the ring's notifications");
    if (const int r = io_uring_register_eventfd(&ring_, fd.get()); r < 0) throw_errno(-r, "io_uring_register_eventfd");
    notification_ = std::move(fd);
    disarm_notification();
    return notification_.get();
}

CLUSTER_DECL bool io_context::arm_notification() {
    (void)notification_fd();
    if (io_uring_sq_ready(&ring_) > 0) flush_submissions();
    (void)io_uring_cq_eventfd_toggle(&ring_, true);
    // The kernel sets the TASKRUN flag, then reads the eventfd's switch; this writes the switch,
    // then reads the flag. With a full fence between on both sides, one of them sees the other:
    // work that comes now is either seen below or signalled.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!completions_waiting() && stashed_.empty()) return true;
    disarm_notification();
    return false;
}

CLUSTER_DECL void io_context::wait_in_attached_loop() {
    external_->wait();
    if (completions_held()) submit_and_get_events();
}

CLUSTER_DECL void io_context::forget_in_forked_children() {
    static const int registered = ::pthread_atfork(nullptr, nullptr, [] {
        for (io_context* c = current_; c; c = c->previous_) c->leave_behind();
        current_ = nullptr;
    });
    (void)registered;
}

CLUSTER_DECL void io_context::leave_behind() noexcept {
    ::close(ring_.ring_fd);
    ring_.ring_fd = -1;
    notification_.reset();
    left_behind_ = true;
}

CLUSTER_DECL void io_context::setup(const io_context_options& options) {
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    params.cq_entries = options.cq_entries ? options.cq_entries : options.entries * 8;
    int r = -EINVAL;
    // TASKRUN_FLAG makes completions held as task work visible in the SQ ring's flags, so that
    // a loop sharing the thread (external_loop) knows, without a syscall, whether it may block.
    if (options.defer_taskrun) {
        io_uring_params p = params;
        p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        r = io_uring_queue_init_params(options.entries, &ring_, &p);
    }
    if (r == -EINVAL) {
        // Older kernels reject flags they do not know; COOP_TASKRUN (5.19) then nothing.
        io_uring_params p = params;
        p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
        r = io_uring_queue_init_params(options.entries, &ring_, &p);
        if (r == -EINVAL) {
            p = params;
            r = io_uring_queue_init_params(options.entries, &ring_, &p);
        }
    }
    if (r < 0) throw setup_error(-r);
    detail::ring_memory_taken();
    if (!(params.features & IORING_FEAT_NODROP) && !(ring_.features & IORING_FEAT_NODROP)) {
        io_uring_queue_exit(&ring_);
        throw std::system_error(errno_code(ENOSYS),
                                "cluster: this kernel's io_uring may drop completions (no IORING_FEAT_NODROP); "
                                "Linux 5.5 or newer is required");
    }
    // A forked child gets no mapping of this ring, so it can never corrupt ours.
    io_uring_ring_dontfork(&ring_);
    // io_uring_enter then finds the ring without an fd lookup (fget/fput) each turn. The
    // registration belongs to this thread, so only a ring tied to it (SINGLE_ISSUER) is
    // registered; a thread may register only 16 rings, and past that plain enter it is.
    if (ring_.flags & IORING_SETUP_SINGLE_ISSUER) ring_registered_ = io_uring_register_ring_fd(&ring_) == 1;
}

CLUSTER_DECL std::system_error io_context::setup_error(int err) {
    std::string what = "cluster: cannot set up io_uring: ";
    if (err == EPERM)
        what += "permission denied; check the sysctl kernel.io_uring_disabled (0 enables it for everyone) "
                "and any seccomp profile of the container";
    else if (err == ENOSYS)
        what += "the kernel has no io_uring (Linux 5.10 or newer is required, built with CONFIG_IO_URING)";
    else if (err == ENOMEM)
        what += "not enough locked memory; raise RLIMIT_MEMLOCK (ulimit -l) or use fewer entries";
    else
        what += std::error_code(err, std::system_category()).message();
    return std::system_error(errno_code(err), what);
}

CLUSTER_DECL void io_context::throw_errno(int err, const char* what) {
    throw std::system_error(errno_code(err), std::string("cluster: ") + what);
}

CLUSTER_DECL void io_context::flush_submissions() {
    int r = io_uring_submit(&ring_);
    if (r >= 0 || r == -EINTR) return;
    if (r == -EBUSY || r == -EAGAIN) {
        // The CQ is backed up: move completions aside so the kernel can go on.
        io_uring_get_events(&ring_);
        for (const auto& e : take_cqes()) stashed_.push_back(e);
        return;
    }
    throw_errno(-r, "io_uring_submit");
}

CLUSTER_DECL void io_context::submit_and_get_events() {
    int r = io_uring_submit_and_get_events(&ring_);
    if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN) throw_errno(-r, "io_uring_submit");
}

CLUSTER_DECL bool io_context::spin_for_completions() {
    woken_remotely_ = false;
    if (spin_.count() <= 0) return false;
    if (io_uring_sq_ready(&ring_) > 0) flush_submissions();
    const auto until = std::chrono::steady_clock::now() + spin_;
    spinning_wakes_.open();
    // Yielding, not pausing: where threads outnumber CPUs, the one this loop waits for may be
    // waiting for this CPU.
    while (!completions_waiting() && !spinning_wakes_.any() && std::chrono::steady_clock::now() < until)
        ::sched_yield();
    const bool left = spinning_wakes_.close([this](std::uintptr_t w) { stashed_.push_back({w, 0, 0}); });
    return left || completions_waiting();
}

CLUSTER_DECL std::vector<detail::cqe_copy> io_context::take_cqes() {
    std::vector<detail::cqe_copy> out;
    io_uring_cqe* batch[64];
    for (;;) {
        unsigned n = io_uring_peek_batch_cqe(&ring_, batch, 64);
        for (unsigned i = 0; i < n; ++i) out.push_back({batch[i]->user_data, batch[i]->res, batch[i]->flags});
        io_uring_cq_advance(&ring_, n);
        // With the CQ full the kernel holds completions back; ask for them.
        if (n == 0 && io_uring_cq_has_overflow(&ring_)) {
            io_uring_get_events(&ring_);
            if (io_uring_cq_ready(&ring_) == 0) break;
            continue;
        }
        if (n < 64) break;
    }
    return out;
}

CLUSTER_DECL void io_context::reap() {
    for (;;) {
        unsigned n = 0, head;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            stashed_.push_back({cqe->user_data, cqe->res, cqe->flags});
            if (++n == 64) break;
        }
        io_uring_cq_advance(&ring_, n);
        dispatch_stashed();
        if (n == 64) continue;
        if (!io_uring_cq_has_overflow(&ring_)) return;
        io_uring_get_events(&ring_);
        if (io_uring_cq_ready(&ring_) == 0) return;
    }
}

CLUSTER_DECL bool io_context::idle() const noexcept {
    return in_flight_ == 0 && ready_.empty() && stashed_.empty() && deferred_.empty() && !external_;
}

CLUSTER_DECL void io_context::run_deferred(bool resume) {
    if (deferred_.empty()) return;
    std::swap(deferred_, running_deferred_);
    for (std::size_t i = 0; i < running_deferred_.size(); ++i) {
        if (auto* c = running_deferred_[i]) c->complete(c, 0, 0, resume);
        stay_out_of_forked_child();
    }
    running_deferred_.clear();
}

CLUSTER_DECL void io_context::dispatch_stashed() {
    while (!stashed_.empty()) {
        const auto e = stashed_.front();
        stashed_.pop_front();
        settle(e, true);
    }
}

CLUSTER_DECL void io_context::settle(const detail::cqe_copy& e, bool resume) {
    if (!(e.flags & IORING_CQE_F_MORE)) --in_flight_;
    if (auto* c = reinterpret_cast<detail::completion*>(static_cast<std::uintptr_t>(e.user_data)))
        c->complete(c, e.res, e.flags, resume);
    stay_out_of_forked_child();
}

CLUSTER_DECL void io_context::resume_ready() {
    // Only what was ready when the turn began: work posted now waits for the next
    // turn, so completions are never starved by coroutines that keep re-posting.
    for (std::size_t n = ready_.size(); n > 0 && !ready_.empty(); --n) {
        auto h = ready_.front();
        ready_.pop_front();
        h.resume();
        stay_out_of_forked_child();
    }
}

CLUSTER_DECL void io_context::install_trampoline() noexcept {
    detail::trampoline::loop = this;
    detail::trampoline::post = [](void* loop, std::coroutine_handle<> h) { static_cast<io_context*>(loop)->post(h); };
}

CLUSTER_DECL void io_context::drain() {
    run_deferred(false);
    if (in_flight_ == 0) return;
    io_uring_prep_cancel64(sqe(nullptr), 0, IORING_ASYNC_CANCEL_ANY);
    while (!stashed_.empty()) {
        const auto e = stashed_.front();
        stashed_.pop_front();
        settle(e, false);
    }
    while (in_flight_ > 0) {
        io_uring_submit_and_wait(&ring_, 1);
        for (const auto& e : take_cqes()) settle(e, false);
    }
}

}  // namespace cluster::io
