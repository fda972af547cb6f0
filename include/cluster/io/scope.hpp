// cluster::io::scope: structured spawning. Tasks started here run concurrently and are
// joined here; a scope destroyed with tasks still running cancels and reclaims them.
#pragma once

#include <cluster/config.hpp>

#include <coroutine>
#include <exception>
#include <stop_token>
#include <utility>

#include <cluster/io/task.hpp>

namespace cluster::io {

class scope {
public:
    scope() = default;
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
    // Tasks still suspended are destroyed where they stand: their pending ops are
    // cancelled and drained first (see basic_op), so no memory is left to the kernel.
    CLUSTER_DECL ~scope();

    // Starts `t` now; it runs until its first suspension before spawn returns. It answers
    // to this scope's stop token. An exception from it is kept for join().
    CLUSTER_DECL void spawn(task<void> t);

    // Waits until every spawned task has finished; rethrows the first exception.
    [[nodiscard]] auto join() noexcept {
        struct awaiter {
            scope& self;
            bool await_ready() const noexcept { return self.head_ == nullptr; }
            void await_suspend(std::coroutine_handle<> h) noexcept { self.joiner_ = h; }
            void await_resume() {
                if (self.error_) std::rethrow_exception(std::exchange(self.error_, nullptr));
            }
        };
        return awaiter{*this};
    }

    void request_stop() noexcept { stop_.request_stop(); }
    [[nodiscard]] std::stop_token stop_token() const noexcept { return stop_.get_token(); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }

private:
    struct child_promise;
    struct child {
        using promise_type = child_promise;
        std::coroutine_handle<child_promise> handle;
    };
    struct child_promise {
        scope* owner = nullptr;
        child_promise* prev = nullptr;
        child_promise* next = nullptr;

        child get_return_object() noexcept { return {std::coroutine_handle<child_promise>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        struct final_awaiter {
            bool await_ready() noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<child_promise> h) noexcept {
                scope& s = *h.promise().owner;
                s.unlink(h.promise());
                h.destroy();
                if (s.head_ == nullptr && s.joiner_) return std::exchange(s.joiner_, {});
                return std::noop_coroutine();
            }
            void await_resume() noexcept {}
        };
        final_awaiter final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept {
            if (!owner->error_) owner->error_ = std::current_exception();
        }
    };

    static child run_child(task<void> t) { co_await std::move(t); }

    CLUSTER_DECL void link(child_promise& p) noexcept;
    CLUSTER_DECL void unlink(child_promise& p) noexcept;

    child_promise* head_ = nullptr;
    std::size_t size_ = 0;
    std::coroutine_handle<> joiner_;
    std::exception_ptr error_;
    std::stop_source stop_;
};

}  // namespace cluster::io

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/io/impl/scope.ipp>
#endif
