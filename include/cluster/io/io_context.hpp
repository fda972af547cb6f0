// cluster::io::io_context: this process's one io_uring and the loop that drives it.
// One thread submits and reaps; every CQE resumes the coroutine that awaited it.
#pragma once

#include <cluster/config.hpp>

#include <liburing.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/io/detail/fifo.hpp>
#include <cluster/io/detail/spinning_wakes.hpp>
#include <cluster/io/detail/trampoline.hpp>
#include <cluster/io/external_loop.hpp>
#include <cluster/io/task.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::io {

namespace detail {

// Anything that submits SQEs embeds one; its address is the SQE's user_data. Memory
// behind it lives until its last CQE: the loop calls `complete` exactly once per CQE.
// `resume` is false while a context drains (destruction, or a synchronous cancel),
// when no coroutine may run.
struct completion {
    void (*complete)(completion* self, int res, unsigned flags, bool resume) noexcept = nullptr;
};

// A completion that calls a member function of its owner: for objects with several ops of
// their own in flight (a channel's flush, write and receive).
template <class Owner, void (Owner::*Fn)(int res, bool resume)>
struct member_completion : completion {
    Owner* owner;
    explicit member_completion(Owner* o) noexcept : owner(o) {
        complete = [](completion* c, int res, unsigned, bool resume) noexcept {
            (static_cast<member_completion*>(c)->owner->*Fn)(res, resume);
        };
    }
};

struct cqe_copy {
    std::uint64_t user_data;
    std::int32_t res;
    std::uint32_t flags;
};

// Starts a task and notes when it finishes, resuming nobody: the root of a loop's work.
struct root_promise;
struct root_coroutine {
    using promise_type = root_promise;
    std::coroutine_handle<root_promise> handle;
};
struct root_promise {
    root_coroutine get_return_object() noexcept { return {std::coroutine_handle<root_promise>::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept {}  // the awaited task keeps its own exception
};
// Starts `t` and waits for it without taking its result (co_await would move the value
// out of the task): run_until takes the value, or the exception, from the task itself.
template <class T>
root_coroutine run_root(task<T>& t) {
    struct start {
        std::coroutine_handle<typename task<T>::promise_type> h;
        bool await_ready() const noexcept { return false; }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> root) noexcept {
            h.promise().set_continuation(root);
            return transfer_to(h);
        }
        void await_resume() const noexcept {}
    };
    co_await start{t.handle()};
}

// Whether this program's loops may wait in another library's loop (external_loop): the Asio
// bridge (cluster/asio.hpp) says so as the program starts, before any loop is made.
inline bool external_loops_in_program = false;

}  // namespace detail

struct io_context_options {
    unsigned entries = 256;   // SQ size; a full SQ is submitted and refilled, never dropped
    unsigned cq_entries = 0;  // CQ size; 0 picks 8 × entries (overflow is still handled)
    // Try SINGLE_ISSUER | DEFER_TASKRUN before plain setup; by default, not in a program whose
    // loops may wait in another's, where the ring's eventfd wakes that loop: Linux 6.18 signals
    // it for a DEFER_TASKRUN ring's completion some 16 ms late (15-23 ms, a socketpair's byte
    // from another process), for a plain ring's within 0.1 ms.
    bool defer_taskrun = !detail::external_loops_in_program;
    // Once another thread woke the loop (a doorbell: a thread worker's message), it looks at
    // its ring this long before it sleeps: the answer or the next message then costs neither
    // thread a sleep and a wake-up. Loops no other thread wakes never spin; 0 turns it off.
    std::chrono::nanoseconds spin = std::chrono::microseconds(50);
};

class io_context {
public:
    explicit CLUSTER_DECL io_context(io_context_options options = {});
    io_context(const io_context&) = delete;
    io_context& operator=(const io_context&) = delete;

    CLUSTER_DECL ~io_context();

    // The context of this thread's loop, or nullptr.
    [[nodiscard]] static io_context* current() noexcept { return current_; }
    [[nodiscard]] static CLUSTER_DECL io_context& current_or_throw();

    [[nodiscard]] unsigned setup_flags() const noexcept { return ring_.flags; }
    // The ring's descriptor; -1 in a forked child, where it was closed as the child began.
    [[nodiscard]] int native_handle() const noexcept { return ring_.ring_fd; }
    [[nodiscard]] unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }
    [[nodiscard]] unsigned cq_entries() const noexcept { return ring_.cq.ring_entries; }
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }
    // How many turns the loop has taken: work that runs on without suspending can tell whether
    // the loop has turned since it last looked.
    [[nodiscard]] std::uint64_t turns() const noexcept { return turns_; }

    // Returns `count` SQEs' worth of space, submitting what is queued when the SQ is full.
    // The caller must fill exactly `count` SQEs from `sqe()` before yielding.
    void reserve(unsigned count) {
        stay_out_of_forked_child();
        stay_on_owner_thread();
        while (io_uring_sq_space_left(&ring_) < count) flush_submissions();
    }
    [[nodiscard]] io_uring_sqe* sqe(detail::completion* c) {
        reserve(1);
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        io_uring_sqe_set_data64(s, reinterpret_cast<std::uintptr_t>(c));
        ++in_flight_;
        return s;
    }

    // Asks the kernel to cancel the op behind `c`; its own CQE still arrives.
    void cancel(detail::completion* c) { io_uring_prep_cancel64(sqe(nullptr), reinterpret_cast<std::uintptr_t>(c), 0); }

    // Cancels the op behind `c` and waits, without resuming any coroutine, until its
    // last CQE: for an op whose memory is about to go away. Other CQEs wait their turn.
    CLUSTER_DECL void cancel_and_wait(detail::completion* c, bool& finished);

    // A CQE that another thread posts to this ring (an IORING_OP_MSG_RING aimed at it, see
    // doorbell): the loop waits for it as for its own ops. Exactly one such CQE must follow
    // each expect_remote(), or one forget_remote() if the other thread will not send it.
    void expect_remote() noexcept { ++in_flight_; }
    void forget_remote() noexcept { --in_flight_; }
    // A remote wake arrived (a doorbell's): the loop spins before it sleeps next (spin).
    void note_remote_wake() noexcept { woken_remotely_ = true; }
    // From another thread, in place of the CQE it would post: true if this loop spins now and
    // will complete `c` (res 0) as that CQE, with no system call on either side.
    [[nodiscard]] bool leave_while_spinning(detail::completion* c) {
        return spinning_wakes_.leave(reinterpret_cast<std::uintptr_t>(c));
    }

    // Submits what is queued now rather than at the end of the turn: for an op that another
    // thread is waiting on.
    void submit_now() {
        stay_out_of_forked_child();
        flush_submissions();
    }

    void post(std::coroutine_handle<> h) {
        stay_on_owner_thread();
        ready_.push_back(h);
    }
    // Takes back a post whose coroutine is being destroyed before its turn came.
    void cancel_post(std::coroutine_handle<> h) noexcept { ready_.erase(h); }

    // End-of-turn hooks: `c` completes (res 0) once, right before the loop next submits,
    // so that work queued all through a turn (a channel's frames) leaves in one go.
    void defer(detail::completion* c) {
        stay_on_owner_thread();
        deferred_.push_back(c);
    }
    CLUSTER_DECL void cancel_defer(detail::completion* c) noexcept;

    // Runs until stop() or until nothing is left to wait for.
    CLUSTER_DECL void run();

    // Runs `t` to completion on this loop and returns its value (or rethrows).
    template <class T>
    T run_until(task<T> t) {
        auto root = detail::run_root(t);
        struct destroy_root {
            std::coroutine_handle<> h;
            ~destroy_root() { h.destroy(); }
        } guard{root.handle};
        stopped_ = false;
        post(root.handle);
        while (!root.handle.done()) {
            if (stopped_)
                throw std::system_error(std::make_error_code(std::errc::operation_canceled),
                                        "cluster: io_context stopped before the task finished");
            if (idle())
                throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur),
                                        "cluster: the task waits for something nothing can deliver");
            run_once(root.handle);
        }
        return t.handle().promise().take();
    }

    void stop() noexcept { stopped_ = true; }
    [[nodiscard]] bool stopped() const noexcept { return stopped_; }

    // Shares this thread with another loop (cluster::asio's): while it is attached, a turn that
    // must wait waits in it, and a busy turn lets it run too (see external_loop); the loop is
    // not idle. One at a time: a second is EBUSY. Detach it before it goes.
    CLUSTER_DECL void attach(external_loop& loop);
    void detach(external_loop& loop) noexcept {
        if (external_ == &loop) external_ = nullptr;
    }
    [[nodiscard]] external_loop* attached() const noexcept { return external_; }

    // What an attached loop watches while it blocks: an eventfd the ring signals when work
    // comes while it is armed. Made, and registered with the ring, on first use.
    [[nodiscard]] CLUSTER_DECL int notification_fd();
    // Before an attached loop blocks: submits what is queued and arms the eventfd. False, and
    // disarmed again, when completions are already waiting: the loop must not block then.
    [[nodiscard]] CLUSTER_DECL bool arm_notification();
    // Once it no longer blocks: this loop's own turns need no wake-ups.
    void disarm_notification() noexcept { (void)io_uring_cq_eventfd_toggle(&ring_, false); }

    // One turn: resume what is ready, submit, wait for at least one completion if
    // nothing else can make progress, and dispatch every completion that arrived.
    // Once `until` is done the turn waits for nothing: run_until() must return then,
    // although ops it no longer cares about (a live peer's receive) stay in flight.
    CLUSTER_DECL void run_once(std::coroutine_handle<> until = nullptr);

private:
    // After any fork() the child must not touch the parent's ring (it is not even mapped
    // there): the forking thread's contexts are left behind, and the child may build its own.
    static CLUSTER_DECL void forget_in_forked_children();

    // In a forked child. Its copy of the ring's descriptor would keep the parent's ring, and
    // every socket with an op in flight there, open after the parent exits: it is closed.
    CLUSTER_DECL void leave_behind() noexcept;

    // A coroutine this loop resumed called fork(), and in the child it asks this loop for an
    // op, or has suspended and handed control back here. This loop is the parent's: its ring
    // is not mapped here, and resuming the parent's other coroutines would act for it twice.
    void stay_out_of_forked_child() const noexcept {
        if (left_behind_) [[unlikely]]
            end_forked_child();
    }
    [[noreturn, gnu::cold, gnu::noinline]] static void end_forked_child() noexcept {
        static constexpr char what[] = "cluster: a process forked from one running an io_context came back to "
                                       "that loop, which is its parent's; it exits (after fork(), exec or _exit)\n";
        (void)!::write(STDERR_FILENO, what, sizeof what - 1);
        ::_exit(EXIT_FAILURE);
    }

    // One thread drives a loop (SINGLE_ISSUER): another thread's op, resumption or hook here
    // would race with it — a thread worker that reached for its primary's loop, say, rather
    // than sending it a message. A programming error: debug builds stop at it, saying so.
    void stay_on_owner_thread() const noexcept {
#ifndef NDEBUG
        if (!::pthread_equal(owner_thread_, ::pthread_self())) [[unlikely]]
            end_on_wrong_thread();
#endif
    }
    [[noreturn, gnu::cold, gnu::noinline]] static void end_on_wrong_thread() noexcept {
        static constexpr char what[] = "cluster: a thread used an io_context that another thread drives (each "
                                       "thread has its own loop; threads talk through messages): aborting\n";
        (void)!::write(STDERR_FILENO, what, sizeof what - 1);
        std::abort();
    }

    CLUSTER_DECL void setup(const io_context_options& options);

    static CLUSTER_DECL std::system_error setup_error(int err);

    [[noreturn]] static CLUSTER_DECL void throw_errno(int err, const char* what);

    CLUSTER_DECL void flush_submissions();

    CLUSTER_DECL void submit_and_get_events();

    // Before the loop sleeps, after a remote wake: submits what is queued, then looks for
    // completions, and wakes left in spinning_wakes_, until `spin` has passed. True if some came.
    CLUSTER_DECL bool spin_for_completions();

    // Completions the kernel holds for this ring: still to run as task work (DEFER_TASKRUN,
    // COOP_TASKRUN), which the TASKRUN flag announces, or held back by a full CQ.
    [[nodiscard]] bool completions_held() const noexcept {
        return (IO_URING_READ_ONCE(*ring_.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
    }

    // Completions for this ring: posted, or held.
    [[nodiscard]] bool completions_waiting() const noexcept {
        return io_uring_cq_ready(&ring_) > 0 || completions_held();
    }

    // Whether a turn that does not wait has anything to ask the kernel for: SQEs to submit, or
    // completions it holds. CQEs in the ring need no call (reap()), nor do wakes left while the
    // loop spun.
    [[nodiscard]] bool kernel_has_work() const noexcept { return io_uring_sq_ready(&ring_) > 0 || completions_held(); }

    // A turn that waited in the attached loop: it may have run work that is ready now, and
    // completions the kernel holds (task work, overflow) come out only when asked for.
    CLUSTER_DECL void wait_in_attached_loop();

    CLUSTER_DECL std::vector<detail::cqe_copy> take_cqes();

    // Moves a batch out of the CQ into stashed_ and dispatches from there one CQE at a
    // time: a resumed coroutine may destroy an op whose CQE is still waiting its turn,
    // and cancel_and_wait must find that CQE (it is no longer in the ring).
    // The CQ is walked inline (io_uring_for_each_cqe), not through liburing's out-of-line
    // peek: this runs every turn, for the one CQE a turn usually brings.
    CLUSTER_DECL void reap();

    [[nodiscard]] CLUSTER_DECL bool idle() const noexcept;

    // Hooks may defer again (into deferred_) or cancel one another (nulled here).
    CLUSTER_DECL void run_deferred(bool resume);

    CLUSTER_DECL void dispatch_stashed();

    CLUSTER_DECL void settle(const detail::cqe_copy& e, bool resume);

    CLUSTER_DECL void resume_ready();

    CLUSTER_DECL void install_trampoline() noexcept;

    // Destruction with ops in flight: cancel them all and wait for every last CQE
    // without resuming anybody. Awaiting coroutines stay suspended for their owners to
    // destroy; their ops see they are finished and touch nothing.
    CLUSTER_DECL void drain();

    static inline thread_local io_context* current_ = nullptr;

    io_uring ring_{};
    bool ring_registered_ = false;
    pid_t owner_pid_;
    bool left_behind_ = false;                   // this is a forked child's copy of its parent's context
    pthread_t owner_thread_ = ::pthread_self();  // the thread that made it, and drives it
    io_context* previous_ = nullptr;
    std::size_t in_flight_ = 0;
    std::uint64_t turns_ = 0;
    bool stopped_ = false;
    std::chrono::nanoseconds spin_;
    bool woken_remotely_ = false;  // since the loop last slept or spun
    detail::spinning_wakes spinning_wakes_;
    detail::fifo<std::coroutine_handle<>> ready_;
    detail::fifo<detail::cqe_copy> stashed_;  // CQEs out of the ring, not yet dispatched
    std::vector<detail::completion*> deferred_;
    std::vector<detail::completion*> running_deferred_;
    external_loop* external_ = nullptr;
    unique_fd notification_;  // see notification_fd()
};

}  // namespace cluster::io

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/io/impl/io_context.ipp>
#endif
