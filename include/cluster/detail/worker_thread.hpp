// cluster::detail::worker_thread: a thread worker as the primary holds it — the thread, its end
// told through an eventfd, its exit status and what it threw; and what a thread cannot do: be killed.
#pragma once

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/transfer.hpp>
#include <cluster/options.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

// Why `o` cannot start a thread worker — what only a process can have — or null if it can.
inline const char* thread_refusal(const primary_options& o) noexcept {
    if (!o.exec.empty() || o.args) return "exec and args name a program to run, and a thread runs the primary's";
    if (!o.cwd.empty()) return "cwd is the process's, which a thread shares with the primary";
    if (o.uid || o.gid) return "uid and gid are the process's, which a thread shares with the primary";
    if (o.silent || o.stdio.out != output_mode::inherit || o.stdio.err != output_mode::inherit)
        return "stdout and stderr are the process's, which a thread shares with the primary: its stdio must be "
               "inherit";
    return nullptr;
}

// What a thread worker's body returns: its exit code, and the message of what it threw.
struct thread_outcome {
    int code = 0;
    std::string failure;
};

class worker_thread {
public:
    using body = std::function<thread_outcome()>;

    // Starts `run` on a thread of its own; the errno of a thread or eventfd that could not be made.
    static result<std::unique_ptr<worker_thread>> start(body run) {
        auto shared = std::make_shared<state>();
        shared->done.reset(::eventfd(0, EFD_CLOEXEC));
        if (!shared->done) return errno_code(errno);
        std::unique_ptr<worker_thread> t(new worker_thread(shared));
        try {
            t->thread_ = std::thread([shared, run = std::move(run)] { finish(*shared, run); });
        } catch (const std::system_error& e) {
            return e.code();
        }
        return t;
    }
    worker_thread(const worker_thread&) = delete;
    worker_thread& operator=(const worker_thread&) = delete;
    // A thread that finished is joined. One still running cannot be stopped: it is left to
    // run detached, holding its own copies of what it uses, until it returns or the process ends.
    ~worker_thread() {
        if (!thread_.joinable()) return;  // joined, detached, or released
        if (state_->finished.load(std::memory_order_acquire))
            thread_.join();
        else
            thread_.detach();
    }

    // Once the thread has returned (or was abandoned: see send_signal): how it ended. Its exit
    // code is what a process's would be; an abandoned one's is SIGKILL's, as if killed.
    io::task<result<io::exit_status>> wait() {
        if (status_) co_return *status_;
        std::uint64_t count = 0;
        auto read = co_await io::read_exact(state_->done.get(), std::as_writable_bytes(std::span(&count, 1)));
        if (!read) co_return read.error();
        if (abandoned_) {
            status_ = io::exit_status{.code = 0, .signal = SIGKILL};
        } else {
            thread_.join();
            status_ = io::exit_status{.code = state_->outcome.code};
            failure_ = std::move(state_->outcome.failure);
        }
        co_return *status_;
    }

    [[nodiscard]] const std::optional<io::exit_status>& status() const noexcept { return status_; }
    // What the thread's code threw, once it ended of it; empty otherwise.
    [[nodiscard]] const std::string& failure() const noexcept { return failure_; }
    [[nodiscard]] bool abandoned() const noexcept { return abandoned_; }

    // Once wait() has returned: the holder's share of what it and the thread share goes now
    // (the eventfd, closed here, or by an abandoned thread as it returns), not when the last
    // handle of the worker does. A thread that finished is joined; one abandoned and still
    // running is detached.
    void release() noexcept {
        if (!status_ || !state_) return;
        if (thread_.joinable()) {
            if (state_->finished.load(std::memory_order_acquire))
                thread_.join();
            else
                thread_.detach();
        }
        state_.reset();
    }

    // A thread takes no signal of its own. SIGKILL, which the supervisor sends a worker that
    // would not leave in time, abandons it: wait() ends as if it was killed, and the thread runs
    // on detached. Any other signal is operation_not_supported.
    result<void> send_signal(int signo) noexcept {
        if (status_) return errno_code(ESRCH);
        if (signo != SIGKILL) return std::make_error_code(std::errc::operation_not_supported);
        if (abandoned_ || state_->finished.load(std::memory_order_acquire)) return {};
        abandoned_ = true;
        const std::uint64_t one = 1;
        (void)!::write(state_->done.get(), &one, sizeof one);
        return {};
    }

private:
    // What the thread and its holder share: the holder may go first (an abandoned thread).
    struct state {
        unique_fd done;  // written once the thread's code has returned
        thread_outcome outcome;
        std::atomic<bool> finished{false};
    };

    explicit worker_thread(std::shared_ptr<state> s) noexcept : state_(std::move(s)) {}

    static void finish(state& s, const body& run) noexcept {
        try {
            s.outcome = run();
        } catch (const std::exception& e) {
            s.outcome = thread_outcome{1, e.what()};
        } catch (...) {
            s.outcome = thread_outcome{1, "an exception that is not a std::exception"};
        }
        s.finished.store(true, std::memory_order_release);
        const std::uint64_t one = 1;
        (void)!::write(s.done.get(), &one, sizeof one);
    }

    std::shared_ptr<state> state_;
    std::thread thread_;
    std::optional<io::exit_status> status_;
    std::string failure_;
    bool abandoned_ = false;
};

}  // namespace cluster::detail
