// cluster::io::io_context: this process's one io_uring and the loop that drives it.
// One thread submits and reaps; every CQE resumes the coroutine that awaited it.
#pragma once

#include <liburing.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/io/detail/trampoline.hpp>
#include <cluster/io/task.hpp>

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

}  // namespace detail

struct io_context_options {
    unsigned entries = 256;     // SQ size; a full SQ is submitted and refilled, never dropped
    unsigned cq_entries = 0;    // CQ size; 0 picks 8 × entries (overflow is still handled)
    bool defer_taskrun = true;  // try SINGLE_ISSUER | DEFER_TASKRUN before plain setup
};

class io_context {
public:
    explicit io_context(io_context_options options = {}) : owner_pid_(::getpid()) {
        forget_in_forked_children();
        setup(options);
        previous_ = current_;
        current_ = this;
    }
    io_context(const io_context&) = delete;
    io_context& operator=(const io_context&) = delete;

    ~io_context() {
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
    }

    // The context of this thread's loop, or nullptr.
    [[nodiscard]] static io_context* current() noexcept { return current_; }
    [[nodiscard]] static io_context& current_or_throw() {
        if (!current_)
            throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                                    "cluster: no io_context on this thread (create one, or use sync_wait)");
        return *current_;
    }

    [[nodiscard]] unsigned setup_flags() const noexcept { return ring_.flags; }
    // The ring's descriptor; -1 in a forked child, where it was closed as the child began.
    [[nodiscard]] int native_handle() const noexcept { return ring_.ring_fd; }
    [[nodiscard]] unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }
    [[nodiscard]] unsigned cq_entries() const noexcept { return ring_.cq.ring_entries; }
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_; }

    // Returns `count` SQEs' worth of space, submitting what is queued when the SQ is full.
    // The caller must fill exactly `count` SQEs from `sqe()` before yielding.
    void reserve(unsigned count) {
        stay_out_of_forked_child();
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
    void cancel_and_wait(detail::completion* c, bool& finished) {
        // Its CQE may have left the ring already and be waiting its turn in stashed_.
        const auto mine = reinterpret_cast<std::uintptr_t>(c);
        for (auto it = stashed_.begin(); it != stashed_.end();) {
            if (it->user_data != mine) {
                ++it;
                continue;
            }
            const auto e = *it;
            it = stashed_.erase(it);
            settle(e, false);
        }
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

    void post(std::coroutine_handle<> h) { ready_.push_back(h); }
    // Takes back a post whose coroutine is being destroyed before its turn came.
    void cancel_post(std::coroutine_handle<> h) noexcept { std::erase(ready_, h); }

    // End-of-turn hooks: `c` completes (res 0) once, right before the loop next submits,
    // so that work queued all through a turn (a channel's frames) leaves in one go.
    void defer(detail::completion* c) { deferred_.push_back(c); }
    void cancel_defer(detail::completion* c) noexcept {
        std::erase(deferred_, c);
        std::replace(running_deferred_.begin(), running_deferred_.end(), c, static_cast<detail::completion*>(nullptr));
    }

    // Runs until stop() or until nothing is left to wait for.
    void run() {
        stopped_ = false;
        while (!stopped_ && !idle()) run_once();
    }

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

    // One turn: resume what is ready, submit, wait for at least one completion if
    // nothing else can make progress, and dispatch every completion that arrived.
    // Once `until` is done the turn waits for nothing: run_until() must return then,
    // although ops it no longer cares about (a live peer's receive) stay in flight.
    void run_once(std::coroutine_handle<> until = nullptr) {
        // A loop run from inside another loop's coroutine hands the trampoline back when
        // it returns, so nothing is ever posted to a loop that has gone.
        stay_out_of_forked_child();
        const detail::trampoline::saved outer_trampoline;
        CLUSTER_MARK_STACK_BASE();
        install_trampoline();
        resume_ready();
        dispatch_stashed();
        run_deferred(true);
        // A hook may have deferred another (a woken sender queued more): that one must
        // run next turn, not after whatever completion the kernel delivers next.
        if (!ready_.empty() || !deferred_.empty() || stopped_ || (until && until.done())) {
            submit_and_get_events();
        } else if (in_flight_ > 0) {
            int r;
            do r = io_uring_submit_and_wait(&ring_, 1);
            while (r == -EINTR);
            if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -ETIME) throw_errno(-r, "io_uring_submit_and_wait");
        }
        reap();
    }

private:
    // After any fork() the child must not touch the parent's ring (it is not even mapped
    // there): the forking thread's contexts are left behind, and the child may build its own.
    static void forget_in_forked_children() {
        static const int registered = ::pthread_atfork(nullptr, nullptr, [] {
            for (io_context* c = current_; c; c = c->previous_) c->leave_behind();
            current_ = nullptr;
        });
        (void)registered;
    }

    // In a forked child. Its copy of the ring's descriptor would keep the parent's ring, and
    // every socket with an op in flight there, open after the parent exits: it is closed.
    void leave_behind() noexcept {
        ::close(ring_.ring_fd);
        ring_.ring_fd = -1;
        left_behind_ = true;
    }

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

    void setup(const io_context_options& options) {
        io_uring_params params{};
        params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
        params.cq_entries = options.cq_entries ? options.cq_entries : options.entries * 8;
        int r = -EINVAL;
        if (options.defer_taskrun) {
            io_uring_params p = params;
            p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
            r = io_uring_queue_init_params(options.entries, &ring_, &p);
        }
        if (r == -EINVAL) {
            // Older kernels reject flags they do not know; COOP_TASKRUN (5.19) then nothing.
            io_uring_params p = params;
            p.flags |= IORING_SETUP_COOP_TASKRUN;
            r = io_uring_queue_init_params(options.entries, &ring_, &p);
            if (r == -EINVAL) {
                p = params;
                r = io_uring_queue_init_params(options.entries, &ring_, &p);
            }
        }
        if (r < 0) throw setup_error(-r);
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

    static std::system_error setup_error(int err) {
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

    [[noreturn]] static void throw_errno(int err, const char* what) {
        throw std::system_error(errno_code(err), std::string("cluster: ") + what);
    }

    void flush_submissions() {
        int r = io_uring_submit(&ring_);
        if (r >= 0 || r == -EINTR) return;
        if (r == -EBUSY || r == -EAGAIN) {
            // The CQ is backed up: move completions aside so the kernel can go on.
            io_uring_get_events(&ring_);
            auto cqes = take_cqes();
            stashed_.insert(stashed_.end(), cqes.begin(), cqes.end());
            return;
        }
        throw_errno(-r, "io_uring_submit");
    }

    void submit_and_get_events() {
        int r = io_uring_submit_and_get_events(&ring_);
        if (r < 0 && r != -EINTR && r != -EBUSY && r != -EAGAIN) throw_errno(-r, "io_uring_submit");
    }

    std::vector<detail::cqe_copy> take_cqes() {
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

    // Moves a batch out of the CQ into stashed_ and dispatches from there one CQE at a
    // time: a resumed coroutine may destroy an op whose CQE is still waiting its turn,
    // and cancel_and_wait must find that CQE (it is no longer in the ring).
    // The CQ is walked inline (io_uring_for_each_cqe), not through liburing's out-of-line
    // peek: this runs every turn, for the one CQE a turn usually brings.
    void reap() {
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

    [[nodiscard]] bool idle() const noexcept {
        return in_flight_ == 0 && ready_.empty() && stashed_.empty() && deferred_.empty();
    }

    // Hooks may defer again (into deferred_) or cancel one another (nulled here).
    void run_deferred(bool resume) {
        if (deferred_.empty()) return;
        std::swap(deferred_, running_deferred_);
        for (std::size_t i = 0; i < running_deferred_.size(); ++i) {
            if (auto* c = running_deferred_[i]) c->complete(c, 0, 0, resume);
            stay_out_of_forked_child();
        }
        running_deferred_.clear();
    }

    void dispatch_stashed() {
        while (!stashed_.empty()) {
            const auto e = stashed_.front();
            stashed_.pop_front();
            settle(e, true);
        }
    }

    void settle(const detail::cqe_copy& e, bool resume) {
        if (!(e.flags & IORING_CQE_F_MORE)) --in_flight_;
        if (auto* c = reinterpret_cast<detail::completion*>(static_cast<std::uintptr_t>(e.user_data)))
            c->complete(c, e.res, e.flags, resume);
        stay_out_of_forked_child();
    }

    void resume_ready() {
        // Only what was ready when the turn began: work posted now waits for the next
        // turn, so completions are never starved by coroutines that keep re-posting.
        for (std::size_t n = ready_.size(); n > 0 && !ready_.empty(); --n) {
            auto h = ready_.front();
            ready_.pop_front();
            h.resume();
            stay_out_of_forked_child();
        }
    }

    void install_trampoline() noexcept {
        detail::trampoline::loop = this;
        detail::trampoline::post = [](void* loop, std::coroutine_handle<> h) {
            static_cast<io_context*>(loop)->post(h);
        };
    }

    // Destruction with ops in flight: cancel them all and wait for every last CQE
    // without resuming anybody. Awaiting coroutines stay suspended for their owners to
    // destroy; their ops see they are finished and touch nothing.
    void drain() {
        run_deferred(false);
        if (in_flight_ == 0) return;
        io_uring_prep_cancel64(sqe(nullptr), 0, IORING_ASYNC_CANCEL_ANY);
        for (const auto& e : std::exchange(stashed_, {})) settle(e, false);
        while (in_flight_ > 0) {
            io_uring_submit_and_wait(&ring_, 1);
            for (const auto& e : take_cqes()) settle(e, false);
        }
    }

    static inline thread_local io_context* current_ = nullptr;

    io_uring ring_{};
    bool ring_registered_ = false;
    pid_t owner_pid_;
    bool left_behind_ = false;  // this is a forked child's copy of its parent's context
    io_context* previous_ = nullptr;
    std::size_t in_flight_ = 0;
    bool stopped_ = false;
    std::deque<std::coroutine_handle<>> ready_;
    std::deque<detail::cqe_copy> stashed_;  // CQEs out of the ring, not yet dispatched
    std::vector<detail::completion*> deferred_;
    std::vector<detail::completion*> running_deferred_;
};

}  // namespace cluster::io
