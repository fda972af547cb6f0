// runtime_bench: a 64-byte ping-pong between two processes over a socketpair with
// co_await read/write, beside the same ping-pong with blocking read/write; and the cost
// of one co_await of a task that completes at once, beside the leanest task there can be (and,
// for information, the leanest eager one: the floor of any task type).
#include <cluster/cluster.hpp>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "blocking_io.hpp"
#include "report.hpp"

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int rounds = 20'000;
constexpr int repeats = 7;
using message = std::array<char, 64>;

using bench::read_full;

// The echo side is always plain blocking I/O, so both measurements share it and differ
// only in how the measuring side waits.
[[noreturn]] void echo_forever(int fd) {
    message m;
    while (read_full(fd, m.data(), m.size()))
        if (::write(fd, m.data(), m.size()) != static_cast<ssize_t>(m.size())) break;
    _exit(0);
}

double raw_rtt_ns(int fd) {
    message m{};
    auto start = clock_type::now();
    for (int i = 0; i < rounds; ++i) {
        if (::write(fd, m.data(), m.size()) != static_cast<ssize_t>(m.size()) || !read_full(fd, m.data(), m.size()))
            std::abort();
    }
    return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / rounds;
}

task<double> uring_rtt_ns(int fd) {
    message m{};
    auto start = clock_type::now();
    for (int i = 0; i < rounds; ++i) {
        auto w = co_await io::write(fd, m);
        if (!w || *w != m.size()) std::abort();
        for (std::size_t got = 0; got < m.size();) {
            auto r = co_await io::read(fd, std::span(m.data() + got, m.size() - got));
            if (!r || *r == 0) std::abort();
            got += *r;
        }
    }
    co_return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / rounds;
}

// The leanest task a compiler can make of the same loop: one free list for frames, no stop
// token, no exception kept, nothing but the value and who awaits it. What co_await_ready_ns
// costs beyond it is the library's; the rest is the compiler's coroutine code.
namespace leanest {
struct block {
    block* next;
};
thread_local block* free_frames = nullptr;
constexpr std::size_t frame_bytes = 256;

struct recycled_frame {
    static void* operator new(std::size_t size) {
        if (size > frame_bytes) std::abort();
        if (auto* b = free_frames) return std::exchange(free_frames, b->next);
        return ::operator new(frame_bytes);
    }
    static void operator delete(void* p, std::size_t) noexcept { free_frames = new (p) block{free_frames}; }
};

// Hands control back to whoever awaits the task, or to its caller if nobody does yet.
template <class Promise>
struct to_awaiter {
    bool await_ready() noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> h) noexcept { return h.promise().awaiter; }
    void await_resume() noexcept {}
};

// Lazy (Eager false), as the library's tasks are: it starts when awaited, and resumes its
// awaiter at the end. Eager: it runs as it is called, so awaiting one that has finished suspends
// nothing, the floor of any task type.
template <class T, bool Eager>
struct basic_task {
    struct promise_type : recycled_frame {
        basic_task get_return_object() noexcept {
            return basic_task{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::conditional_t<Eager, std::suspend_never, std::suspend_always> initial_suspend() noexcept { return {}; }
        to_awaiter<promise_type> final_suspend() noexcept { return {}; }
        void return_value(T v) noexcept { value = v; }
        [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
        std::coroutine_handle<> awaiter = std::noop_coroutine();
        T value{};
    };
    explicit basic_task(std::coroutine_handle<promise_type> h) noexcept : handle(h) {}
    basic_task(basic_task&& other) noexcept : handle(std::exchange(other.handle, {})) {}
    ~basic_task() {
        if (handle) handle.destroy();
    }
    struct awaiter {
        std::coroutine_handle<promise_type> h;
        bool await_ready() noexcept { return Eager && h.done(); }
        std::coroutine_handle<> await_suspend(std::coroutine_handle<> a) noexcept {
            h.promise().awaiter = a;
            if constexpr (Eager)
                return std::noop_coroutine();
            else
                return h;
        }
        T await_resume() noexcept { return h.promise().value; }
    };
    awaiter operator co_await() && noexcept { return {handle}; }
    std::coroutine_handle<promise_type> handle;
};

template <class T>
using task = basic_task<T, false>;
template <class T>
using eager_task = basic_task<T, true>;
}  // namespace leanest

constexpr int ready_rounds = 10'000'000;

template <template <class> class Task>
Task<int> ready(int i) {
    co_return i;
}

template <template <class> class Task>
Task<double> co_await_ready_ns() {
    long sum = 0;
    auto start = clock_type::now();
    for (int i = 0; i < ready_rounds; ++i) sum += co_await ready<Task>(i);
    auto ns = std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / ready_rounds;
    if (sum == 0) std::abort();
    co_return ns;
}

double leanest_co_await_ready_ns() {
    auto t = co_await_ready_ns<leanest::task>();
    t.handle.resume();  // every co_await in it completes at once, so this returns when it is done
    return t.handle.promise().value;
}

double eager_co_await_ready_ns() {
    auto t = co_await_ready_ns<leanest::eager_task>();  // done as it returns
    if (!t.handle.done()) std::abort();
    return t.handle.promise().value;
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "  A 64-byte ping-pong over a socketpair with co_await, beside blocking read/write,\n"
                             "  and the cost of a co_await that completes at once, beside the leanest task (and\n"
                             "  the leanest eager one, the floor of any task type);\n"
                             "  one JSON line per figure.\n"))
        return 0;
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(sv[0]);
        echo_forever(sv[1]);
    }
    ::close(sv[1]);

    io_context ctx;
    std::vector<double> raw, uring;
    // Interleaved, so both see the same machine state; the first pair warms up.
    for (int r = 0; r <= repeats; ++r) {
        double a = raw_rtt_ns(sv[0]);
        double b = ctx.run_until(uring_rtt_ns(sv[0]));
        if (r == 0) continue;
        raw.push_back(a);
        uring.push_back(b);
    }
    ::close(sv[0]);
    ::waitpid(pid, nullptr, 0);

    std::vector<double> ready_ns, leanest_ns, eager_ns;
    for (int r = 0; r < repeats; ++r) {
        ready_ns.push_back(ctx.run_until(co_await_ready_ns<task>()));
        leanest_ns.push_back(leanest_co_await_ready_ns());
        eager_ns.push_back(eager_co_await_ready_ns());
    }

    bench::print({"pingpong_rtt", bench::median(uring), "ns", "blocking read/write ping-pong on the same socketpair",
                  bench::median(raw), "lower", "ratio <= 1.10"});
    bench::print({"co_await_ready_ns", bench::median(ready_ns), "ns", "the same co_await of the leanest task",
                  bench::median(leanest_ns), "lower", "report"});
    bench::print({"co_await_ready_eager_floor_ns", bench::median(eager_ns), "ns",
                  "the same co_await of the leanest lazy task", bench::median(leanest_ns), "lower",
                  "none (information)"});
}
