// Values moved between two threads' loops by thread_pipe, woken by doorbells through each wake
// method: order both ways at once, backpressure, the end of either side, a doorbell's wake, and
// a wake that finds its loop spinning.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/io/doorbell.hpp>
#include <cluster/io/thread_pipe.hpp>

#include <sys/syscall.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/syscall_filter.hpp"

using namespace cluster;

namespace {

constexpr std::uint64_t each_way = 10'000;

using pipe_of_numbers = io::thread_pipe<std::uint64_t>;
using pipe_ptr = std::shared_ptr<pipe_of_numbers>;

const char* name_of(io::wake_method m) { return io::to_string(m); }

// Sends 0..count-1 on `out` and takes as many from `in`, each in order; returns how many
// came out of order or not at all. Sends and takes run at once, as two tasks.
task<std::uint64_t> send_and_take(pipe_of_numbers& out, pipe_of_numbers& in, std::uint64_t count) {
    std::uint64_t wrong = 0;
    scope tasks;
    tasks.spawn([](pipe_of_numbers& to, std::uint64_t n) -> task<void> {
        for (std::uint64_t i = 0; i < n; ++i) {
            auto queued = to.push(std::uint64_t(i));
            auto sent = co_await to.wait_for_room(queued);
            if (!sent) co_return;
        }
        to.producer_close();
    }(out, count));
    std::uint64_t expected = 0;
    for (;;) {
        auto v = co_await in.receive();
        if (!v) break;
        if (*v != expected) ++wrong;
        ++expected;
    }
    co_await tasks.join();
    co_return wrong + (count - expected);
}

// One side of a pair of pipes, on a thread and loop of its own: what its send_and_take found.
struct other_side {
    std::uint64_t wrong = ~std::uint64_t(0);
    std::thread thread;

    other_side(pipe_ptr out, pipe_ptr in, std::uint64_t count) {
        thread = std::thread([this, out, in, count] {
            io_context ctx;
            out->producer_open();
            in->consumer_open();
            wrong = sync_wait(send_and_take(*out, *in, count));
            in->consumer_close();
        });
    }
    ~other_side() {
        if (thread.joinable()) thread.join();
    }
};

std::size_t count_one(const std::uint64_t&) noexcept { return 1; }

// The consumer of `p` on a thread and loop of its own: it takes nothing until go(), then
// counts what it takes until the producer closes.
struct counting_consumer {
    std::atomic<std::uint64_t> taken{0};
    std::atomic<bool> started{false};
    std::thread thread;

    explicit counting_consumer(pipe_ptr p) {
        thread = std::thread([this, p] {
            io_context mine;
            p->consumer_open();
            while (!started.load()) std::this_thread::yield();
            sync_wait([](pipe_of_numbers& from, std::atomic<std::uint64_t>& count) -> task<void> {
                while (auto v = co_await from.receive()) count.fetch_add(1);
            }(*p, taken));
            p->consumer_close();
        });
    }
    ~counting_consumer() {
        if (thread.joinable()) thread.join();
    }
    void go() { started.store(true); }
};

// A loop's spin after a remote wake, and a wait long enough to show that it ends.
constexpr std::chrono::milliseconds spin_bound{20}, quiet_window{300};

std::chrono::nanoseconds thread_cpu_time() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

TEST_CASE("10,000 values each way at once arrive in order, through a bound of 64") {
    const auto how = GENERATE(io::wake_method::msg_ring, io::wake_method::eventfd);
    if (how == io::wake_method::msg_ring && io::probed_wake_method() != io::wake_method::msg_ring) return;
    INFO(name_of(how));
    auto there = std::make_shared<pipe_of_numbers>(64, &count_one, how);
    auto back = std::make_shared<pipe_of_numbers>(64, &count_one, how);
    std::uint64_t wrong_here = 0;
    {
        io_context ctx;
        there->producer_open();
        back->consumer_open();
        other_side side(back, there, each_way);
        wrong_here = sync_wait(send_and_take(*there, *back, each_way));
        back->consumer_close();
        side.thread.join();
        CHECK(side.wrong == 0);
    }
    CHECK(wrong_here == 0);
}

// The pipe's own producer waits on its side's doorbell; another thread that pushes (a thread
// worker's send_to another) waits on a doorbell of its own, which the pipe rings with it.
TEST_CASE("a sender past the high-water mark waits until the other thread has taken enough, the pipe's or another") {
    const auto how = GENERATE(io::wake_method::msg_ring, io::wake_method::eventfd);
    if (how == io::wake_method::msg_ring && io::probed_wake_method() != io::wake_method::msg_ring) return;
    const bool another = GENERATE(false, true);
    INFO(name_of(how) << (another ? ", another thread's producer" : ", the pipe's producer"));
    constexpr std::size_t bound = 8;
    constexpr std::uint64_t pushed = 100;
    auto p = std::make_shared<pipe_of_numbers>(bound, &count_one, how);
    counting_consumer consumer(p);
    {
        io_context ctx;
        std::optional<io::doorbell> mine;
        if (another)
            mine.emplace(how);
        else
            p->producer_open();
        for (std::uint64_t i = 0; i < pushed; ++i) CHECK_FALSE(p->push(std::uint64_t(i)));
        CHECK(p->full());
        if (another) CHECK_FALSE(p->room_or_arm(*mine));
        consumer.go();
        if (another) {
            sync_wait([](pipe_of_numbers& to, io::doorbell& bell) -> task<void> {
                do {
                    co_await bell.wait();
                } while (!to.room_or_arm(bell));
            }(*p, *mine));
            p->forget_producer(*mine);
        } else {
            auto room = sync_wait(p->wait_for_room({}));
            CHECK(room.has_value());
        }
        // Room means the queue is back within its bound: the rest was taken first. The consumer
        // counts a value once its receive has returned it, so the last one taken may not be yet.
        CHECK(consumer.taken.load() + 1 >= pushed - bound);
        p->producer_close();
    }
    consumer.thread.join();
    CHECK(consumer.taken.load() == pushed);
}

TEST_CASE("a consumer that goes fails the sends after it, and wakes a sender waiting for room") {
    const auto how = GENERATE(io::wake_method::msg_ring, io::wake_method::eventfd);
    if (how == io::wake_method::msg_ring && io::probed_wake_method() != io::wake_method::msg_ring) return;
    INFO(name_of(how));
    auto p = std::make_shared<pipe_of_numbers>(1, &count_one, how);
    io_context ctx;
    p->producer_open();
    std::atomic<bool> go{false};
    std::thread consumer([p, &go] {
        io_context mine;
        p->consumer_open();
        while (!go.load()) std::this_thread::yield();
        p->consumer_close();
    });
    auto first = p->push(1);
    auto second = p->push(2);
    CHECK_FALSE(first);
    CHECK_FALSE(second);
    go.store(true);
    auto room = sync_wait(p->wait_for_room(second));
    consumer.join();
    REQUIRE_FALSE(room.has_value());
    CHECK(room.error() == errc::peer_gone);
    auto after = p->push(3);
    CHECK(after == errc::peer_gone);
    p->producer_close();
}

TEST_CASE("a receiver on another thread takes what was queued before the producer closed, then nothing") {
    const auto how = GENERATE(io::wake_method::msg_ring, io::wake_method::eventfd);
    if (how == io::wake_method::msg_ring && io::probed_wake_method() != io::wake_method::msg_ring) return;
    INFO(name_of(how));
    auto p = std::make_shared<io::thread_pipe<std::string>>(1u << 20, nullptr, how);
    std::vector<std::string> got;
    std::atomic<bool> waiting{false};
    std::thread consumer([p, &got, &waiting] {
        io_context mine;
        p->consumer_open();
        sync_wait(
            [](io::thread_pipe<std::string>& from, std::vector<std::string>& out, std::atomic<bool>& w) -> task<void> {
                w.store(true);
                while (auto v = co_await from.receive()) out.push_back(std::move(*v));
            }(*p, got, waiting));
        p->consumer_close();
    });
    io_context ctx;
    p->producer_open();
    while (!waiting.load()) std::this_thread::yield();
    std::string a = "first", b = "second";
    CHECK_FALSE(p->push(std::move(a)));
    CHECK_FALSE(p->push(std::move(b)));
    p->producer_close();
    consumer.join();
    CHECK(got == std::vector<std::string>{"first", "second"});
    std::string late = "late";
    CHECK(p->push(std::move(late)) == errc::channel_closed);
}

TEST_CASE("after another thread's wake a loop spins io_context_options::spin at most, then sleeps") {
    const auto how = GENERATE(io::wake_method::msg_ring, io::wake_method::eventfd);
    if (how == io::wake_method::msg_ring && io::probed_wake_method() != io::wake_method::msg_ring) return;
    INFO(name_of(how));
    std::atomic<io::doorbell*> armed{nullptr};
    // What the consumer's thread measured, checked on this one once it ended: Catch is not
    // thread-safe.
    std::chrono::nanoseconds cpu_while_quiet{};
    std::thread consumer([&] {
        io_context mine(io::io_context_options{.spin = spin_bound});
        io::doorbell bell(how);
        sync_wait([&]() -> task<void> {
            // Armed before it is shown: the ring below wakes this wait, whenever it comes.
            bell.arm();
            auto woken = bell.wait();
            armed.store(&bell);
            co_await woken;
            // The window measured: the loop's own timer, after the wake from another thread.
            const auto before = thread_cpu_time();
            auto slept = co_await io::sleep_for(quiet_window);
            cpu_while_quiet = slept ? thread_cpu_time() - before : std::chrono::nanoseconds::max();
        }());
    });
    io_context ctx;
    io::doorbell* bell = nullptr;
    while (!(bell = armed.load())) std::this_thread::yield();
    bell->ring();
    consumer.join();
    INFO("CPU time over " << quiet_window.count() << " ms idle: " << cpu_while_quiet.count() / 1000 << " us");
    CHECK(cpu_while_quiet < spin_bound + std::chrono::milliseconds(30));
}

TEST_CASE("a wake rung while its loop spins is taken from memory: neither thread enters the kernel for it") {
    if (io::probed_wake_method() != io::wake_method::msg_ring) return;  // an eventfd's wake is a write
    std::atomic<io::doorbell*> armed{nullptr};
    std::atomic<bool> consumer_ended{false};
    // Set on each thread and read here once both have ended: Catch is not thread-safe.
    bool consumer_filtered = false, producer_filtered = false, woken = false;
    std::exception_ptr consumer_failed, producer_failed;
    support::counted_calls = 0;
    std::thread consumer([&] {
        // A long spin: the second wake finds it spinning, however late it comes.
        io_context mine(io::io_context_options{.spin = std::chrono::seconds(5)});
        io::doorbell bell;
        try {
            sync_wait([&]() -> task<void> {
                bell.arm();
                auto first = bell.wait();
                armed.store(&bell);
                co_await first;  // through the kernel, which woke this loop from its sleep
                // From here the loop must not enter the kernel, and its spin's yields are counted.
                consumer_filtered = support::filter_this_thread(SYS_io_uring_enter, SYS_sched_yield);
                if (!consumer_filtered) co_return;
                bell.arm();
                co_await bell.wait();
                woken = true;
            }());
        } catch (...) {
            consumer_failed = std::current_exception();
        }
        consumer_ended.store(true);
    });
    std::thread producer([&] {
        io_context ctx;
        io::doorbell* bell = nullptr;
        while (!(bell = armed.load())) std::this_thread::yield();
        try {
            bell->ring();
            producer_filtered = support::filter_this_thread(SYS_io_uring_enter);
            // The consumer's loop spins once it has yielded, waiting for this wake; or it has ended.
            while (support::counted_calls.load() == 0 && !consumer_ended.load()) std::this_thread::yield();
            if (producer_filtered && !consumer_ended.load()) bell->ring();
        } catch (...) {
            producer_failed = std::current_exception();
        }
    });
    producer.join();
    consumer.join();
    support::restore_sigsys();
    REQUIRE(consumer_filtered);
    REQUIRE(producer_filtered);
    CHECK_FALSE(producer_failed);
    CHECK_FALSE(consumer_failed);
    CHECK(woken);
    CHECK(support::counted_calls.load() >= 1);
}
