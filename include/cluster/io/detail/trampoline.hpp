// Symmetric transfer with a safety net: where the compiler does not turn a transfer
// into a tail call (GCC without optimisation), deep chains bounce through the loop.
#pragma once

#include <coroutine>
#include <cstddef>

// GCC emits symmetric transfer as a real call at -O0, so a long run of tasks that
// complete synchronously grows the stack until it overflows; clang and optimised GCC
// emit tail calls and need none of this.
#if defined(__GNUC__) && !defined(__clang__) && !defined(__OPTIMIZE__)
#define CLUSTER_TRAMPOLINE 1
#else
#define CLUSTER_TRAMPOLINE 0
#endif

namespace cluster::io::detail {

// The loop driving coroutines on this thread: where the stack stood when it last
// resumed one, and how to hand it a coroutine to resume later.
struct trampoline {
    static inline thread_local const char* stack_base = nullptr;
    static inline thread_local void* loop = nullptr;
    static inline thread_local void (*post)(void* loop, std::coroutine_handle<>) = nullptr;

    static constexpr std::ptrdiff_t depth_limit = 256 * 1024;

    // Restores the state found at construction: a loop installs itself for one turn only.
    struct saved {
        const char* base = stack_base;
        void* saved_loop = loop;
        void (*saved_post)(void*, std::coroutine_handle<>) = post;
        saved() = default;
        saved(const saved&) = delete;
        saved& operator=(const saved&) = delete;
        ~saved() {
            stack_base = base;
            loop = saved_loop;
            post = saved_post;
        }
    };
};

inline std::coroutine_handle<> transfer_to(std::coroutine_handle<> next) noexcept {
#if CLUSTER_TRAMPOLINE
    const char* here = static_cast<const char*>(__builtin_frame_address(0));
    if (trampoline::stack_base && trampoline::post && trampoline::stack_base - here > trampoline::depth_limit) {
        trampoline::post(trampoline::loop, next);
        return std::noop_coroutine();
    }
#endif
    return next;
}

// Called by a loop right before it resumes coroutines: the stack is measured from its frame.
#define CLUSTER_MARK_STACK_BASE()                                                                                      \
    (::cluster::io::detail::trampoline::stack_base = static_cast<const char*>(__builtin_frame_address(0)))

}  // namespace cluster::io::detail
