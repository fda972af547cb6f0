// io_context: ring setup, tiny rings under heavy load (full SQ, CQ overflow), the
// loop's entry points (run, run_until, stop), teardown with ops in flight, fork, and the
// turns that need no system call.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>

#include "support/descriptors.hpp"
#include "support/syscall_filter.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace cluster;
using namespace cluster::io;
using namespace std::chrono_literals;

namespace {

using support::make_socketpair;

using support::tcp_listener;

using support::local_address;

bool kernel_at_least(int major, int minor) {
    utsname u{};
    ::uname(&u);
    int ma = 0, mi = 0;
    std::sscanf(u.release, "%d.%d", &ma, &mi);
    return ma > major || (ma == major && mi >= minor);
}

task<void> one_nop() { (void)co_await io::nop(); }

task<bool> nop_ok() { co_return (co_await io::nop()).has_value(); }

task<void> nop_and_count(int& ok) {
    auto r = co_await io::nop();
    if (r) ++ok;
}

task<void> sleep_and_count(int& ok) {
    auto r = co_await io::sleep_for(1ms);
    if (r) ++ok;
}

task<void> read_u64(int fd, std::vector<std::uint64_t>& out) {
    std::uint64_t v = 0;
    auto r = co_await io::read(fd, std::span(&v, 1));
    if (r && *r == sizeof v) out.push_back(v);
}

task<void> write_u64(int fd, std::uint64_t v, int& ok) {
    auto r = co_await io::write(fd, std::span(&v, 1));
    if (r && *r == sizeof v) ++ok;
}

task<void> read_forever(int fd, bool& resumed) {
    char buf[64];
    (void)co_await io::read(fd, buf);
    resumed = true;
}

task<void> sleep_forever(bool& resumed) {
    (void)co_await io::sleep_for(1h);
    resumed = true;
}

task<void> accept_forever(int fd, bool& resumed) {
    io::multishot_accept acceptor(fd);
    (void)co_await acceptor.next();
    resumed = true;
}

task<void> join(scope& s) { co_await s.join(); }

}  // namespace

TEST_CASE("io_context sets up SINGLE_ISSUER | DEFER_TASKRUN where the kernel has them") {
    io_context ctx;
    const unsigned flags = ctx.setup_flags();
    const bool single_issuer = flags & IORING_SETUP_SINGLE_ISSUER;
    const bool defer_taskrun = flags & IORING_SETUP_DEFER_TASKRUN;
    utsname u{};
    ::uname(&u);
    WARN("kernel " << u.release << ": setup flags 0x" << std::hex << flags << std::dec
                   << " SINGLE_ISSUER=" << single_issuer << " DEFER_TASKRUN=" << defer_taskrun
                   << " sq=" << ctx.sq_entries() << " cq=" << ctx.cq_entries());
    CHECK((flags & IORING_SETUP_SQPOLL) == 0);  // never SQPOLL
    CHECK(ctx.sq_entries() == 256);
    CHECK(ctx.cq_entries() == 8 * 256);
    if (kernel_at_least(6, 1)) {
        CHECK(single_issuer);
        CHECK(defer_taskrun);
    }
    CHECK(sync_wait(nop_ok()));

    // Opting out gives a plain ring that works just the same.
    io_context plain(io_context_options{.entries = 16, .cq_entries = 0, .defer_taskrun = false});
    CHECK((plain.setup_flags() & IORING_SETUP_DEFER_TASKRUN) == 0);
    CHECK((plain.setup_flags() & IORING_SETUP_SINGLE_ISSUER) == 0);
    CHECK(io_context::current() == &plain);
    CHECK(sync_wait(nop_ok()));
}

TEST_CASE("a ring of 8 entries with a CQ of 16 completes 10,000 concurrent nops") {
    io_context ctx(io_context_options{.entries = 8, .cq_entries = 16});
    CHECK(ctx.sq_entries() == 8);
    CHECK(ctx.cq_entries() == 16);
    int ok = 0;
    auto body = [](int& n) -> task<void> {
        scope s;
        for (int i = 0; i < 10'000; ++i) s.spawn(nop_and_count(n));
        CHECK(s.size() == 10'000);  // all started, none could complete yet
        co_await s.join();
    };
    ctx.run_until(body(ok));
    CHECK(ok == 10'000);
    CHECK(ctx.in_flight() == 0);
}

TEST_CASE("a ring of 8 entries completes 10,000 concurrent sleeps") {
    io_context ctx(io_context_options{.entries = 8, .cq_entries = 16});
    int ok = 0;
    auto body = [](int& n) -> task<void> {
        scope s;
        for (int i = 0; i < 10'000; ++i) s.spawn(sleep_and_count(n));
        co_await s.join();
    };
    ctx.run_until(body(ok));
    CHECK(ok == 10'000);
    CHECK(ctx.in_flight() == 0);
}

TEST_CASE("a ring of 8 entries completes 10,000 concurrent reads and writes on socketpairs") {
    // 100 datagram socketpairs, 100 pending reads on each, then 10,000 writes: every
    // value must arrive exactly once.
    io_context ctx(io_context_options{.entries = 8, .cq_entries = 16});
    constexpr int pairs = 100, per_pair = 100;
    std::vector<std::array<unique_fd, 2>> sp;
    for (int i = 0; i < pairs; ++i) sp.push_back(make_socketpair(SOCK_DGRAM));
    std::vector<std::uint64_t> received;
    int written = 0;
    auto body = [](std::vector<std::array<unique_fd, 2>>& sp, std::vector<std::uint64_t>& got, int& w) -> task<void> {
        scope readers, writers;
        for (int p = 0; p < pairs; ++p)
            for (int i = 0; i < per_pair; ++i) readers.spawn(read_u64(sp[p][0].get(), got));
        CHECK(readers.size() == pairs * per_pair);
        for (int p = 0; p < pairs; ++p)
            for (int i = 0; i < per_pair; ++i)
                writers.spawn(write_u64(sp[p][1].get(), static_cast<std::uint64_t>(p * per_pair + i), w));
        co_await writers.join();
        co_await readers.join();
    };
    ctx.run_until(body(sp, received, written));
    CHECK(written == pairs * per_pair);
    REQUIRE(received.size() == pairs * per_pair);
    std::sort(received.begin(), received.end());
    for (std::size_t i = 0; i < received.size(); ++i) REQUIRE(received[i] == i);
    CHECK(ctx.in_flight() == 0);
}

TEST_CASE("run_until returns the task's value and rethrows its exception") {
    io_context ctx;
    auto value = []() -> task<std::string> {
        (void)co_await io::nop();
        co_return std::string(100, 'x');  // heap-allocated: must be moved out intact
    };
    CHECK(ctx.run_until(value()) == std::string(100, 'x'));
    auto fails = []() -> task<int> {
        (void)co_await io::nop();
        throw std::runtime_error("task failed");
    };
    CHECK_THROWS_WITH(ctx.run_until(fails()), "task failed");
    auto moveonly = []() -> task<std::unique_ptr<int>> {
        (void)co_await io::nop();
        co_return std::make_unique<int>(5);
    };
    auto p = ctx.run_until(moveonly());
    REQUIRE(p);
    CHECK(*p == 5);
    CHECK(ctx.in_flight() == 0);
}

TEST_CASE("run() returns once nothing is left to do") {
    io_context ctx;
    scope s;
    int ok = 0;
    for (int i = 0; i < 50; ++i) s.spawn(nop_and_count(ok));
    for (int i = 0; i < 50; ++i) s.spawn(sleep_and_count(ok));
    CHECK(s.size() == 100);
    ctx.run();
    CHECK(ok == 100);
    CHECK(s.size() == 0);
    CHECK(ctx.in_flight() == 0);
    ctx.run();  // nothing to do: returns at once
}

TEST_CASE("stop() makes run() return and run_until throw operation_canceled") {
    io_context ctx;
    bool sleeper_resumed = false;
    {
        scope s;
        s.spawn(sleep_forever(sleeper_resumed));
        auto stopper = [](io_context& c) -> task<void> {
            (void)co_await io::nop();
            c.stop();
        };
        s.spawn(stopper(ctx));
        ctx.run();  // returns although the sleeper is still waiting
        CHECK(ctx.stopped());
        CHECK(s.size() == 1);
        CHECK(ctx.in_flight() >= 1);

        auto stops_itself = [](io_context& c) -> task<int> {
            c.stop();
            (void)co_await io::sleep_for(1h);
            co_return 1;
        };
        try {
            (void)ctx.run_until(stops_itself(ctx));
            FAIL("run_until returned");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::operation_canceled);
        }
    }  // the scope reclaims the sleeper
    CHECK_FALSE(sleeper_resumed);
    ctx.run_until(one_nop());  // the loop is usable after stop()
    CHECK(ctx.in_flight() == 0);
}

TEST_CASE("run_until detects a task that waits for something nothing can deliver") {
    io_context ctx;
    auto stuck = []() -> task<int> {
        (void)co_await io::nop();
        co_await std::suspend_always{};
        co_return 1;
    };
    try {
        (void)ctx.run_until(stuck());
        FAIL("run_until returned");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::resource_deadlock_would_occur);
    }
    CHECK(ctx.in_flight() == 0);
    ctx.run_until(one_nop());
}

TEST_CASE("destroying an io_context with ops in flight cancels and drains them") {
    auto sp = make_socketpair();
    auto listener = tcp_listener();
    bool read_resumed = false, sleep_resumed = false, accept_resumed = false;
    std::optional<scope> s;
    auto ctx = std::make_unique<io_context>();
    s.emplace();
    s->spawn(read_forever(sp[0].get(), read_resumed));
    s->spawn(sleep_forever(sleep_resumed));
    s->spawn(accept_forever(listener.get(), accept_resumed));
    sync_wait(one_nop());  // submits all three
    CHECK(ctx->in_flight() == 3);
    ctx.reset();
    CHECK(io_context::current() == nullptr);
    CHECK(s->size() == 3);  // still suspended: nobody was resumed
    CHECK_FALSE(read_resumed);
    CHECK_FALSE(sleep_resumed);
    CHECK_FALSE(accept_resumed);
    s.reset();  // the owners destroy their tasks; the ops must not touch the dead ring

    // Nothing is still armed in the kernel: the socket and the listener work as usual.
    REQUIRE(::write(sp[1].get(), "ping", 4) == 4);
    char buf[8] = {};
    REQUIRE(::recv(sp[0].get(), buf, sizeof buf, MSG_DONTWAIT) == 4);
    CHECK(std::string(buf, 4) == "ping");
    unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto addr = local_address(listener.get());
    REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    unique_fd accepted(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    CHECK(accepted.valid());
}

TEST_CASE("an op destroyed in flight is cancelled and its buffer is never written later") {
    io_context ctx;
    auto sp = make_socketpair();
    bool resumed = false;
    {
        scope s;
        s.spawn(read_forever(sp[0].get(), resumed));  // reads into its own frame
        sync_wait(one_nop());
        CHECK(ctx.in_flight() == 1);
    }  // frame and buffer gone
    CHECK_FALSE(resumed);
    REQUIRE(::write(sp[1].get(), "after", 5) == 5);
    for (int i = 0; i < 3; ++i) sync_wait(one_nop());  // turns of the loop: nothing stale completes
    CHECK(ctx.in_flight() == 0);
    char buf[8] = {};
    REQUIRE(::recv(sp[0].get(), buf, sizeof buf, MSG_DONTWAIT) == 5);  // the bytes went to nobody else
    CHECK(std::string(buf, 5) == "after");
}

TEST_CASE("destroying several in-flight ops at once, one of them already completed in the kernel") {
    // Regression: the completion of the second op arrived while the first was being
    // cancelled and was set aside; cancelling the second then waited for it forever.
    io_context ctx;
    auto a = make_socketpair();
    auto b = make_socketpair();
    bool a_resumed = false, b_resumed = false;
    {
        scope s;
        s.spawn(read_forever(b[0].get(), b_resumed));  // destroyed last
        s.spawn(read_forever(a[0].get(), a_resumed));  // destroyed first
        sync_wait(one_nop());
        CHECK(ctx.in_flight() == 2);
        REQUIRE(::write(b[1].get(), "b", 1) == 1);  // b's read completes, not yet reaped
    }
    CHECK_FALSE(a_resumed);
    CHECK_FALSE(b_resumed);
    sync_wait(one_nop());
    CHECK(ctx.in_flight() == 0);
}

TEST_CASE("a coroutine resumed by one completion may destroy an op whose completion is in the same batch") {
    // Regression: completions were copied out of the ring a batch at a time; an op
    // destroyed by an earlier entry of the batch was waited for forever (its CQE had
    // already left the ring) and then completed after it was freed.
    io_context ctx;
    auto a = make_socketpair();
    auto b = make_socketpair();
    bool b_resumed = false;
    std::optional<scope> inner;
    auto reset_after_read = [](int fd, std::optional<scope>& victim) -> task<void> {
        char buf[8];
        auto r = co_await io::read(fd, buf);
        CHECK(r.has_value());
        victim.reset();  // destroys the other reader, whose CQE sits right behind ours
    };
    auto body = [](decltype(reset_after_read)& first, int afd, int bfd, int a_peer, int b_peer, bool& b_res,
                   std::optional<scope>& in) -> task<void> {
        scope outer;
        outer.spawn(first(afd, in));  // SQE 1
        in.emplace();
        in->spawn(read_forever(bfd, b_res));  // SQE 2
        REQUIRE(::write(a_peer, "a", 1) == 1);
        REQUIRE(::write(b_peer, "b", 1) == 1);
        co_await outer.join();  // both reads complete on submission, in one batch
    };
    ctx.run_until(body(reset_after_read, a[0].get(), b[0].get(), a[1].get(), b[1].get(), b_resumed, inner));
    CHECK_FALSE(inner.has_value());
    CHECK_FALSE(b_resumed);
    sync_wait(one_nop());
    CHECK(ctx.in_flight() == 0);
}

TEST_CASE("after fork() the child runs its own io_context while the parent's keeps working") {
    io_context ctx;
    auto sp = make_socketpair();
    auto pipe_to_child = make_socketpair();
    std::string got;
    scope s;
    auto reader = [](int fd, std::string& out) -> task<void> {
        char buf[64];
        auto r = co_await io::read(fd, buf);
        if (r) out.assign(buf, *r);
    };
    s.spawn(reader(sp[0].get(), got));
    sync_wait(one_nop());  // the parent's read is armed in the parent's ring
    REQUIRE(ctx.in_flight() == 1);

    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        int code = 1;
        try {
            io_context child_ctx;  // its own ring; the parent's is not even mapped here
            if (io_context::current() != &child_ctx) ::_exit(2);
            auto work = [](int to_parent, int from_parent) -> task<bool> {
                char buf[16];
                auto r = co_await io::read(from_parent, buf);  // wait to be told
                if (!r || *r != 2) co_return false;
                (void)co_await io::sleep_for(1ms);
                auto w = co_await io::write(to_parent, std::string_view("from child"));
                co_return w&&* w == 10;
            };
            code = child_ctx.run_until(work(sp[1].get(), pipe_to_child[1].get())) ? 0 : 3;
        } catch (...) {
            code = 4;
        }
        ::_exit(code);
    }
    // The parent's ring does more I/O while the child has its own.
    for (int i = 0; i < 10; ++i) CHECK(sync_wait(nop_ok()));
    auto tell = [](int fd) -> task<bool> {
        auto w = co_await io::write(fd, std::string_view("go"));
        co_return w&&* w == 2;
    };
    CHECK(sync_wait(tell(pipe_to_child[0].get())));
    sync_wait(join(s));
    CHECK(got == "from child");
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("current() follows nested io_contexts and is per thread") {
    CHECK(io_context::current() == nullptr);
    CHECK_THROWS_AS(io_context::current_or_throw(), std::system_error);
    {
        io_context outer;
        CHECK(io_context::current() == &outer);
        CHECK(&io_context::current_or_throw() == &outer);
        {
            io_context inner;
            CHECK(io_context::current() == &inner);
            auto where = []() -> task<io_context*> {
                (void)co_await io::nop();
                co_return io_context::current();
            };
            CHECK(sync_wait(where()) == &inner);  // sync_wait uses the current one
            io_context* seen_in_thread = &inner;
            std::thread([&] { seen_in_thread = io_context::current(); }).join();
            CHECK(seen_in_thread == nullptr);
        }
        CHECK(io_context::current() == &outer);
        CHECK(sync_wait(nop_ok()));
    }
    CHECK(io_context::current() == nullptr);
}

// The check exists where assertions do: a release build trusts the code it was tested as.
#ifndef NDEBUG
TEST_CASE("in a debug build, a thread that reaches for another thread's loop is stopped at once, saying why") {
    const bool op = GENERATE(true, false);
    INFO((op ? "it asks for an op" : "it posts a resumption"));
    int err[2];
    REQUIRE(::pipe(err) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        (void)::dup2(err[1], STDERR_FILENO);
        io_context theirs;
        std::thread([&theirs, op] {
            if (op)
                io_uring_prep_nop(theirs.sqe(nullptr));
            else
                theirs.post(std::noop_coroutine());
        }).join();
        ::_exit(0);  // never: the thread's call ends the process
    }
    ::close(err[1]);
    std::string said;
    char buf[256];
    for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;) said.append(buf, static_cast<std::size_t>(n));
    ::close(err[0]);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
    CHECK(said.find("a thread used an io_context that another thread drives") != std::string::npos);
}
#endif

TEST_CASE("after a raw fork() the child has no current io_context and can build its own") {
    io_context parent;
    int report[2];
    REQUIRE(::pipe(report) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char verdict = 'x';
        if (io_context::current() == nullptr) {
            auto slept = sync_wait(io::sleep_for(std::chrono::milliseconds(1)));
            verdict = slept ? 'y' : 'n';
        }
        (void)!::write(report[1], &verdict, 1);
        _exit(0);
    }
    ::close(report[1]);
    char verdict = 0;
    REQUIRE(::read(report[0], &verdict, 1) == 1);
    ::close(report[0]);
    ::waitpid(pid, nullptr, 0);
    CHECK(verdict == 'y');
    CHECK(io_context::current() == &parent);
}

namespace {

// A task of the loop that forks, and whose child, instead of exec or _exit, awaits something
// of the parent's loop: an op, or a latch (it then hands control back to the loop). `after`
// was made ready just before the fork: in the parent it runs next; in the child it must not.
struct fork_probe {
    bool child_awaits_an_op = false;
    pid_t parent = ::getpid();
    int ring_fd = -1;
    int report = -1;  // 'c': the child's copy of the ring's descriptor is closed; 'p': `after` ran in the parent
    int child_err = -1;
    latch go, never;
    pid_t child = 0;
};

task<void> fork_in_the_loop(fork_probe& p) {
    (void)co_await io::nop();  // from here on the loop resumes this task
    p.go.set();
    p.child = ::fork();
    if (p.child != 0) co_return;
    (void)::dup2(p.child_err, STDERR_FILENO);
    const char ring = ::fcntl(p.ring_fd, F_GETFD) == -1 && errno == EBADF ? 'c' : 'o';
    (void)!::write(p.report, &ring, 1);
    if (p.child_awaits_an_op)
        (void)co_await io::sleep_for(1ms);
    else
        (void)co_await p.never.wait();
    (void)!::write(p.report, "!", 1);  // never: the loop ends the child first
    ::_exit(0);
}

task<void> after(fork_probe& p) {
    (void)co_await p.go.wait();
    (void)!::write(p.report, ::getpid() == p.parent ? "p" : "x", 1);
}

}  // namespace

TEST_CASE("a forked child that uses its parent's loop is ended with a message, resuming nothing of the parent's") {
    const bool awaits_an_op = GENERATE(true, false);
    INFO((awaits_an_op ? "the child awaits a timer" : "the child awaits a latch"));
    io_context ctx;
    auto report = support::make_pipe();
    const unique_fd child_err(::memfd_create("stderr", MFD_CLOEXEC));
    REQUIRE(child_err);
    fork_probe p;
    p.child_awaits_an_op = awaits_an_op;
    p.ring_fd = ctx.native_handle();
    p.report = report[1].get();
    p.child_err = child_err.get();
    scope s;
    s.spawn(after(p));
    s.spawn(fork_in_the_loop(p));
    sync_wait(join(s));
    REQUIRE(p.child > 0);
    int status = 0;
    REQUIRE(::waitpid(p.child, &status, 0) == p.child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == EXIT_FAILURE);
    report[1].reset();
    std::string written;
    char c;
    while (::read(report[0].get(), &c, 1) == 1) written += c;
    std::sort(written.begin(), written.end());
    CHECK(written == "cp");
    CHECK_THAT(support::read_all(child_err.get()), Catch::Contains("came back to that loop, which is its parent's"));
    CHECK(sync_wait(nop_ok()));  // the parent's loop goes on
}

namespace {

// End-of-turn hooks for the test below: the first defers the second, which sets a latch.
struct hook_deferring : io::detail::completion {
    io_context* ctx;
    io::detail::completion* next;
    hook_deferring(io_context& c, io::detail::completion& n) : ctx(&c), next(&n) {
        complete = [](io::detail::completion* self, int, unsigned, bool) noexcept {
            auto* me = static_cast<hook_deferring*>(self);
            me->ctx->defer(me->next);
        };
    }
};

struct hook_setting : io::detail::completion {
    latch* flag;
    explicit hook_setting(latch& l) : flag(&l) {
        complete = [](io::detail::completion* self, int, unsigned, bool) noexcept {
            static_cast<hook_setting*>(self)->flag->set();
        };
    }
};

task<void> wait_for(latch& l) { (void)co_await l.wait(); }

task<void> sleep_long() { (void)co_await io::sleep_for(10s); }

task<std::size_t> defer_then_race(io_context& ctx, io::detail::completion& first, latch& second_ran) {
    ctx.defer(&first);
    auto winner = co_await when_any(wait_for(second_ran), sleep_long());
    co_return winner.index();
}

}  // namespace

TEST_CASE("a hook deferred by a deferred hook runs on the next turn, not after the next completion") {
    // Regression: with nothing ready, run_once went to wait in the kernel although a hook
    // had just deferred another; the only op in flight (the sleep) then decided when it ran.
    io_context ctx;
    latch second_ran;
    hook_setting second(second_ran);
    hook_deferring first(ctx, second);
    CHECK(ctx.run_until(defer_then_race(ctx, first, second_ran)) == 0);
}

namespace {

// Resumes its coroutine on the loop's next turn, through nothing but the loop's own queue.
struct next_turn {
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) const { io_context::current_or_throw().post(h); }
    void await_resume() const noexcept {}
};

task<int> count_turns(int count) {
    int turns = 0;
    for (; turns < count; ++turns) co_await next_turn{};
    co_return turns;
}

}  // namespace

TEST_CASE(
    "a turn with work ready and nothing to submit makes no system call: 1,000 turns with io_uring_enter forbidden") {
    // Set on the thread and read once it has ended: Catch is not thread-safe.
    bool filtered = false;
    int turns = 0;
    std::exception_ptr failed;
    std::thread filtered_thread([&] {
        io_context ctx;
        filtered = support::filter_this_thread(SYS_io_uring_enter);
        if (!filtered) return;
        try {
            turns = ctx.run_until(count_turns(1000));
        } catch (...) {
            failed = std::current_exception();
        }
    });
    filtered_thread.join();
    REQUIRE(filtered);
    CHECK_FALSE(failed);
    CHECK(turns == 1000);
}
