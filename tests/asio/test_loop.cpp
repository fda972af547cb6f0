// One thread, two loops: an asio::io_context run by cluster::asio::run() on the cluster loop's
// thread — handlers and tasks interleaved, no thread and no polling added, both ends of run()
// (out of work, stop(), a handler's exception, a stop request, a grace after a stop) — and each
// side awaiting the other's operations: use_task in a cluster task, async_await and async_wait in
// Asio code, with cancellation both ways and nothing left behind when either side goes first.
#include <catch2/catch.hpp>

#include <cluster/asio.hpp>
#include <cluster/cluster.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include "support/both_loops.hpp"
#include "support/descriptors.hpp"
#include "support/waiting.hpp"

using namespace cluster;
using namespace std::chrono_literals;
using namespace boost::asio::experimental::awaitable_operators;
namespace ba = boost::asio;
using support::bounded;
using support::on_both_loops;

namespace {

// This process's threads, as the kernel counts them.
int thread_count() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("Threads:")) return std::stoi(line.substr(8));
    return -1;
}

std::chrono::nanoseconds thread_cpu_time() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// The two ends of a ping-pong, one byte each way n times: each side waits in its own loop for
// the other's byte, so the log interleaves exactly, whatever the machine's timing.
task<void> cluster_pings(std::vector<std::string>& log, int fd, int n) {
    char byte = 'p';
    for (int i = 0; i < n; ++i) {
        auto sent = co_await io::write(fd, std::span(&byte, 1));
        REQUIRE(sent.has_value());
        log.emplace_back("cluster");
        auto got = co_await io::read(fd, std::span(&byte, 1));
        REQUIRE(got.has_value());
        REQUIRE(*got == 1);
    }
}

ba::awaitable<void> asio_pongs(std::vector<std::string>& log, ba::local::stream_protocol::socket& s, int n) {
    char byte;
    for (int i = 0; i < n; ++i) {
        co_await ba::async_read(s, ba::buffer(&byte, 1), ba::use_awaitable);
        log.emplace_back("asio");
        co_await ba::async_write(s, ba::buffer(&byte, 1), ba::use_awaitable);
    }
}

// Once asio::run() is running: a handler posted now runs only there.
task<void> asio_running(ba::io_context& asio) {
    io::latch ran;
    ba::post(asio, [&ran] { ran.set(); });
    const bool set = co_await ran.wait();
    REQUIRE(set);
}

struct thrown_by_a_handler : std::runtime_error {
    thrown_by_a_handler() : std::runtime_error("thrown by an Asio handler") {}
};

}  // namespace

TEST_CASE(
    "run() interleaves Asio's handlers with the cluster loop's tasks on one thread, until Asio runs out of work") {
    // DEFER_TASKRUN, and the COOP_TASKRUN ring older kernels fall back to.
    io::io_context_options options;
    options.defer_taskrun = GENERATE(true, false);
    INFO((options.defer_taskrun ? "DEFER_TASKRUN" : "COOP_TASKRUN"));
    on_both_loops(
        [](ba::io_context& asio) -> task<void> {
            const int threads = thread_count();
            const auto me = std::this_thread::get_id();
            std::vector<std::string> log;
            std::thread::id asio_thread;
            int ends[2];
            REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
            const unique_fd mine(ends[0]);
            ba::local::stream_protocol::socket theirs(asio);
            theirs.assign(ba::local::stream_protocol(), ends[1]);
            ba::co_spawn(asio, asio_pongs(log, theirs, 20), ba::detached);
            ba::post(asio, [&] { asio_thread = std::this_thread::get_id(); });
            scope s;
            s.spawn(cluster_pings(log, mine.get(), 20));
            co_await asio::run(asio);  // ends once the pongs are done: its work, not ours
            CHECK(asio.stopped());
            CHECK(asio_thread == me);
            CHECK(thread_count() == threads);
            co_await s.join();
            CHECK(std::count(log.begin(), log.end(), "asio") == 20);
            CHECK(std::count(log.begin(), log.end(), "cluster") == 20);
            // Interleaved turn by turn: each side went on only once the other's loop had run.
            for (std::size_t i = 0; i < log.size(); ++i) CHECK(log[i] == (i % 2 ? "asio" : "cluster"));
        },
        options);
}

// Linux 6.18 signals a DEFER_TASKRUN ring's eventfd some 16 ms after a completion that another
// thread or process causes: a loop waiting in Asio's reactor woke that late, and beast_server
// under round_robin took 20 ms a connection.
TEST_CASE("a loop waiting in Asio's reactor wakes at once for a completion another thread causes: its ring is not "
          "DEFER_TASKRUN") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        CHECK((io::io_context::current()->setup_flags() & IORING_SETUP_DEFER_TASKRUN) == 0);
        int ends[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
        const unique_fd mine(ends[0]);
        const unique_fd theirs(ends[1]);
        ba::steady_timer keeps_asio_waiting(asio, 1h);
        keeps_asio_waiting.async_wait([](const boost::system::error_code&) {});
        scope s;
        s.spawn(asio::run(asio));
        constexpr int rounds = 21;
        std::atomic<std::chrono::steady_clock::rep> written{0};
        // Each round: a byte from here, and back from the thread once it has it, timed there.
        std::thread answerer([&written, fd = theirs.get()] {
            char byte;
            for (int i = 0; i < rounds && ::read(fd, &byte, 1) == 1; ++i) {
                written = std::chrono::steady_clock::now().time_since_epoch().count();
                if (::write(fd, &byte, 1) != 1) return;
            }
        });
        std::vector<std::chrono::steady_clock::duration> waits;
        char byte = 'p';
        for (int i = 0; i < rounds; ++i) {
            auto sent = co_await io::write(mine.get(), std::span(&byte, 1));
            auto got = co_await io::read(mine.get(), std::span(&byte, 1));
            const auto woken = std::chrono::steady_clock::now().time_since_epoch();
            if (!sent || !got || *got != 1) break;
            waits.push_back(woken - std::chrono::steady_clock::duration(written.load()));
        }
        ::shutdown(mine.get(), SHUT_RDWR);  // the thread's read ends, should a round have failed
        answerer.join();
        keeps_asio_waiting.cancel();
        co_await s.join();
        REQUIRE(waits.size() == rounds);
        std::nth_element(waits.begin(), waits.begin() + rounds / 2, waits.end());
        const auto median = std::chrono::duration_cast<std::chrono::microseconds>(waits[rounds / 2]);
        INFO("median wake after the byte was written: " << median.count() << " us");
        CHECK(median < 8ms);
    });
}

TEST_CASE(
    "run() on an io_context with no work returns at once, as io_context::run() does, and restart() runs it again") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        co_await asio::run(asio);
        CHECK(asio.stopped());
        bool ran = false;
        ba::post(asio, [&] { ran = true; });
        co_await asio::run(asio);  // stopped: nothing runs until restarted
        CHECK_FALSE(ran);
        asio.restart();
        co_await asio::run(asio);
        CHECK(ran);
    });
}

TEST_CASE(
    "while both loops wait, the thread sleeps in Asio's reactor: no busy loop, and a cluster timer still wakes it") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        ba::steady_timer far(asio, 1h);  // Asio work that keeps run() going, and does nothing
        far.async_wait([](const boost::system::error_code&) {});
        scope s;
        s.spawn(asio::run(asio));
        const auto cpu = thread_cpu_time();
        const auto start = std::chrono::steady_clock::now();
        (void)co_await io::sleep_for(300ms);
        const auto waited = std::chrono::steady_clock::now() - start;
        const auto used = thread_cpu_time() - cpu;
        CHECK(waited >= 300ms);
        // A loop that polled would burn the whole 300 ms; waking once costs microseconds.
        CHECK(used < 30ms);
        far.cancel();
        co_await s.join();
    });
}

TEST_CASE("ioc.stop() from an Asio handler or from a cluster task ends run(), its queued handlers left for later") {
    const bool from_asio = GENERATE(true, false);
    INFO((from_asio ? "stopped by an Asio handler" : "stopped by a cluster task"));
    on_both_loops([from_asio](ba::io_context& asio) -> task<void> {
        auto guard = ba::make_work_guard(asio);
        bool later = false;
        if (from_asio) {
            ba::post(asio, [&] {
                asio.stop();
                ba::post(asio, [&] { later = true; });
            });
            co_await asio::run(asio);
        } else {
            scope s;
            s.spawn(asio::run(asio));
            co_await asio_running(asio);
            ba::post(asio, [&] { later = true; });
            asio.stop();
            co_await s.join();
        }
        CHECK(asio.stopped());
        CHECK_FALSE(later);
        asio.restart();
        guard.reset();
        co_await asio::run(asio);
        CHECK(later);
    });
}

TEST_CASE("an exception a handler throws leaves run(), as from io_context::run(), and run() may go on") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        bool after = false;
        ba::post(asio, [] { throw thrown_by_a_handler(); });
        ba::post(asio, [&] { after = true; });
        bool caught = false;
        try {
            co_await asio::run(asio);
        } catch (const thrown_by_a_handler&) {
            caught = true;
        }
        CHECK(caught);
        CHECK_FALSE(after);
        co_await asio::run(asio);
        CHECK(after);
    });
}

TEST_CASE("a stop asked of the task awaiting run() stops Asio's loop, and with_timeout() bounds it") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        auto guard = ba::make_work_guard(asio);
        auto r = co_await with_timeout(asio::run(asio), 50ms);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::timed_out);
        CHECK(asio.stopped());
    });
}

TEST_CASE("run(ioc, stop, grace): Asio work that outlives a stop by its grace is stopped, timed_out, never run") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        std::stop_source stop;
        bool fired = false;
        ba::steady_timer stubborn(asio, 1h);  // ignores the stop
        stubborn.async_wait([&](const boost::system::error_code&) { fired = true; });
        // Timed from before the stopper is armed: its 20 ms count from there (measured from
        // after, it took 119.98 ms once).
        const auto start = std::chrono::steady_clock::now();
        ba::steady_timer stopper(asio, 20ms);
        stopper.async_wait([&](const boost::system::error_code&) { stop.request_stop(); });
        auto r = co_await asio::run(asio, stop.get_token(), 100ms);
        const auto took = std::chrono::steady_clock::now() - start;
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::timed_out);
        CHECK(took >= 120ms);
        CHECK(took < 5s);
        CHECK_FALSE(fired);

        // Work that sees the stop and finishes ends it well within the grace.
        asio.restart();
        stubborn.cancel();
        std::stop_source again;
        ba::co_spawn(
            asio,
            [](std::stop_token s) -> ba::awaitable<void> {
                co_await asio::async_wait(s, ba::use_awaitable);  // a drain that watches the stop
            }(again.get_token()),
            ba::detached);
        ba::post(asio, [&] { again.request_stop(); });
        auto drained = co_await asio::run(asio, again.get_token(), 10s);
        CHECK(drained.has_value());
    });
}

TEST_CASE("a second loop sharing the cluster loop's thread is refused with EBUSY while the first runs") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        ba::io_context other{1};
        auto guard = ba::make_work_guard(asio);
        auto other_guard = ba::make_work_guard(other);
        scope s;
        s.spawn(asio::run(asio));
        std::error_code refused;
        try {
            co_await asio::run(other);
        } catch (const std::system_error& e) {
            refused = e.code();
        }
        CHECK(refused == std::errc::device_or_resource_busy);
        guard.reset();
        asio.stop();
        co_await s.join();
    });
}

TEST_CASE("use_task: a cluster task awaits Asio operations, their errors and values as cluster results") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        auto guard = ba::make_work_guard(asio);
        scope s;
        s.spawn(asio::run(asio));

        ba::steady_timer timer(asio, 5ms);
        auto waited = co_await timer.async_wait(asio::use_task);  // void(error_code)
        CHECK(waited.has_value());

        co_await ba::post(asio, asio::use_task);  // void()

        ba::local::stream_protocol::socket a(asio), b(asio);
        ba::local::connect_pair(a, b);
        const std::string hello = "hello";
        auto wrote = co_await ba::async_write(a, ba::buffer(hello), asio::use_task);  // void(error_code, size_t)
        REQUIRE(wrote.has_value());
        CHECK(*wrote == 5);
        std::string got(5, '\0');
        auto read = co_await ba::async_read(b, ba::buffer(got), asio::use_task);
        REQUIRE(read.has_value());
        CHECK(got == hello);
        a.close();
        auto ended = co_await b.async_read_some(ba::buffer(got), asio::use_task);
        REQUIRE_FALSE(ended.has_value());
        CHECK(ended.error() == std::error_code(boost::system::error_code(ba::error::eof)));

        guard.reset();
        co_await s.join();
    });
}

TEST_CASE("use_task: a stop asked of the awaiting task cancels the Asio operation, which ends operation_canceled") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        auto guard = ba::make_work_guard(asio);
        scope s;
        s.spawn(asio::run(asio));
        ba::steady_timer timer(asio, 1h);
        std::stop_source stop;
        ba::steady_timer stopper(asio, 10ms);
        stopper.async_wait([&](const boost::system::error_code&) { stop.request_stop(); });
        auto waited = co_await [](ba::steady_timer& t)
            -> task<result<void>> { co_return co_await t.async_wait(asio::use_task); }(timer).with_stop_token(
                stop.get_token());
        REQUIRE_FALSE(waited.has_value());
        CHECK(waited.error() == std::errc::operation_canceled);

        // with_timeout() bounds one the same way.
        auto timed = co_await with_timeout(
            [](ba::steady_timer& t) -> task<result<void>> { co_return co_await t.async_wait(asio::use_task); }(timer),
            10ms);
        REQUIRE_FALSE(timed.has_value());
        CHECK(timed.error() == std::errc::timed_out);
        guard.reset();
        co_await s.join();
    });
}

TEST_CASE("use_task: a task destroyed mid-wait cancels its Asio operation, whose late completion resumes nobody") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        auto guard = ba::make_work_guard(asio);
        scope running;
        running.spawn(asio::run(asio));
        ba::steady_timer timer(asio, 1h);
        bool resumed = false;
        {
            scope doomed;
            doomed.spawn([](ba::steady_timer& t, bool& r) -> task<void> {
                (void)co_await t.async_wait(asio::use_task);
                r = true;
            }(timer, resumed));
        }  // destroyed where it stands
        // The cancelled wait still completes in Asio, a turn or two later.
        co_await ba::post(asio, asio::use_task);
        co_await ba::post(asio, asio::use_task);
        CHECK_FALSE(resumed);
        guard.reset();
        co_await running.join();
    });
}

TEST_CASE("async_await: an asio::awaitable awaits cluster tasks, io ops and mailboxes, their values and exceptions") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        mailbox<int> box;
        io::latch waiting;
        std::vector<std::string> log;
        ba::co_spawn(
            asio,
            [](mailbox<int>& box, std::vector<std::string>& log, io::latch& waiting) -> ba::awaitable<void> {
                auto done = co_await asio::async_await(io::nop(), ba::use_awaitable);
                log.push_back(done ? "nop" : "no nop");
                waiting.set();  // the next await finds the mailbox empty
                auto taken = co_await asio::async_await(box.take(), ba::use_awaitable);
                log.push_back(taken ? "took " + std::to_string(*taken) : "took nothing");
                co_await asio::async_await([]() -> task<void> { co_return; }(), ba::use_awaitable);
                log.push_back("void");
                try {
                    co_await asio::async_await([]() -> task<int> { throw std::runtime_error("from a task"); }(),
                                               ba::use_awaitable);
                } catch (const std::runtime_error& e) {
                    log.push_back(e.what());
                }
            }(box, log, waiting),
            ba::detached);
        scope s;
        s.spawn(asio::run(asio));
        const bool asio_waits = co_await waiting.wait();
        REQUIRE(asio_waits);
        box.push(42);
        co_await s.join();
        CHECK(log == std::vector<std::string>{"nop", "took 42", "void", "from a task"});
    });
}

TEST_CASE("async_await: Asio's cancellation (an awaitable operator ||) asks the cluster task to stop") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        mailbox<int> box;  // nothing ever comes
        bool stopped = false;
        std::size_t which = 9;
        ba::co_spawn(
            asio,
            [](mailbox<int>& box, bool& stopped, std::size_t& which) -> ba::awaitable<void> {
                ba::steady_timer timer(co_await ba::this_coro::executor, 10ms);
                auto first = co_await (asio::async_await(
                                           [](mailbox<int>& b, bool& s) -> task<void> {
                                               auto got = co_await b.take();  // empty: the stop came
                                               s = !got;
                                           }(box, stopped),
                                           ba::use_awaitable) ||
                                       timer.async_wait(ba::use_awaitable));
                which = first.index();
            }(box, stopped, which),
            ba::detached);
        co_await asio::run(asio);
        CHECK(which == 1);
        CHECK(stopped);
    });
}

TEST_CASE("async_wait(stop_token): done once requested, at once if it was, operation_aborted when cancelled") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        std::stop_source stop, already, never;
        already.request_stop();
        std::vector<std::string> log;
        auto record = [&log](std::string what) {
            return [&log, what](const boost::system::error_code& ec) { log.push_back(what + ": " + ec.message()); };
        };
        asio::async_wait(already.get_token(), ba::bind_executor(asio, record("already")));
        asio::async_wait(stop.get_token(), ba::bind_executor(asio, record("requested")));
        ba::cancellation_signal cancel;
        asio::async_wait(never.get_token(),
                         ba::bind_executor(asio, ba::bind_cancellation_slot(cancel.slot(), record("cancelled"))));
        scope s;
        s.spawn(asio::run(asio));
        co_await asio_running(asio);  // the three waits are Asio's to complete now
        stop.request_stop();
        cancel.emit(ba::cancellation_type::terminal);
        co_await s.join();
        std::sort(log.begin(), log.end());
        CHECK(log ==
              std::vector<std::string>{"already: Success", "cancelled: Operation canceled", "requested: Success"});
    });
}

TEST_CASE("an io_context destroyed with cluster tasks running for its handlers destroys them, leaking nothing") {
    const std::size_t fds = support::open_fd_count();
    bool completed = false;
    {
        io_context ctx;
        {
            ba::io_context asio{1};
            auto [a, b] = support::make_socketpair();
            ba::co_spawn(
                asio,
                [](int fd, bool& done) -> ba::awaitable<void> {
                    char c;
                    (void)co_await asio::async_await(io::read(fd, std::span(&c, 1)), ba::use_awaitable);
                    done = true;
                }(a.get(), completed),
                ba::detached);
            sync_wait([](ba::io_context& io) -> task<void> {
                auto r = co_await with_timeout(asio::run(io), 20ms);  // the read waits on
                CHECK_FALSE(r.has_value());
            }(asio));
        }           // the read's task goes with the context, its op cancelled in the ring first
        ctx.run();  // the cancellation's own completion
        CHECK(ctx.in_flight() == 0);
    }
    CHECK_FALSE(completed);
    CHECK(support::open_fd_count() == fds);
}

TEST_CASE("10,000 round trips between a cluster task and an Asio coroutine, each side awaiting the other") {
    on_both_loops([](ba::io_context& asio) -> task<void> {
        constexpr int trips = 10'000;
        mailbox<int> to_asio;
        int last = 0;
        ba::co_spawn(
            asio,
            [](mailbox<int>& box, int& last) -> ba::awaitable<void> {
                while (auto n = co_await asio::async_await(box.take(), ba::use_awaitable)) last = *n;
            }(to_asio, last),
            ba::detached);
        scope s;
        s.spawn(asio::run(asio));
        for (int i = 1; i <= trips; ++i) {
            to_asio.push(i);
            co_await ba::post(asio, asio::use_task);  // a turn of Asio's, awaited from here
            co_await ba::post(asio, asio::use_task);
        }
        to_asio.close();
        co_await s.join();
        CHECK(last == trips);
    });
}
