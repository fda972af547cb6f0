// signal_set: signals as awaitable values through a signalfd — raised here, sent from a
// forked child, sent before anyone waits — and the signal mask put back afterwards.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

using namespace cluster;

namespace {

// Should a signal ever slip through unblocked, it must not kill the test runner.
struct quiet_handlers {
    struct sigaction old_usr1 {
    }, old_usr2{}, old_hup{};
    static void ignore(int) {}
    quiet_handlers() {
        struct sigaction sa {};
        sa.sa_handler = &ignore;
        ::sigaction(SIGUSR1, &sa, &old_usr1);
        ::sigaction(SIGUSR2, &sa, &old_usr2);
        ::sigaction(SIGHUP, &sa, &old_hup);
    }
    ~quiet_handlers() {
        ::sigaction(SIGUSR1, &old_usr1, nullptr);
        ::sigaction(SIGUSR2, &old_usr2, nullptr);
        ::sigaction(SIGHUP, &old_hup, nullptr);
    }
};

bool blocked(int signo) {
    sigset_t now;
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    return sigismember(&now, signo) == 1;
}

task<result<int>> next_signal(const signal_set& s) { co_return co_await s.next(); }

// The next signal's number, which must come.
int signal_received(const signal_set& s) {
    auto r = sync_wait(next_signal(s));
    REQUIRE(r.has_value());
    return *r;
}

}  // namespace

TEST_CASE("a raised signal is delivered by next()") {
    quiet_handlers q;
    signal_set set{SIGUSR1};
    CHECK(set.contains(SIGUSR1));
    CHECK_FALSE(set.contains(SIGUSR2));
    CHECK(set.native_handle() >= 0);
    CHECK(blocked(SIGUSR1));

    REQUIRE(::raise(SIGUSR1) == 0);
    CHECK(signal_received(set) == SIGUSR1);

    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
    CHECK(signal_received(set) == SIGUSR1);
}

TEST_CASE("a signal arriving while next() waits wakes it") {
    quiet_handlers q;
    signal_set set{SIGUSR2};
    auto body = [](const signal_set& s) -> task<int> {
        auto raiser = []() -> task<void> {
            (void)co_await io::nop();
            (void)co_await io::nop();
            ::kill(::getpid(), SIGUSR2);
        };
        auto [sig, done] = co_await when_all(next_signal(s), raiser());
        (void)done;
        co_return sig ? *sig : -1;
    };
    CHECK(sync_wait(body(set)) == SIGUSR2);
}

TEST_CASE("several signals are each delivered") {
    quiet_handlers q;
    signal_set set{SIGUSR1, SIGUSR2, SIGHUP};
    REQUIRE(::raise(SIGHUP) == 0);
    REQUIRE(::raise(SIGUSR2) == 0);
    REQUIRE(::raise(SIGUSR1) == 0);
    auto body = [](const signal_set& s) -> task<std::multiset<int>> {
        std::multiset<int> got;
        for (int i = 0; i < 3; ++i) {
            auto r = co_await s.next();
            REQUIRE(r.has_value());
            got.insert(*r);
        }
        co_return got;
    };
    CHECK(sync_wait(body(set)) == std::multiset<int>{SIGUSR1, SIGUSR2, SIGHUP});
    // Nothing else is pending: a non-blocking look at the signalfd finds it empty.
    sigset_t pending;
    sigpending(&pending);
    CHECK_FALSE(sigismember(&pending, SIGUSR1));
    CHECK_FALSE(sigismember(&pending, SIGUSR2));
    CHECK_FALSE(sigismember(&pending, SIGHUP));
}

TEST_CASE("a signal sent before next() is awaited is still delivered") {
    quiet_handlers q;
    signal_set set{SIGUSR1};
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);  // nobody waits yet: it stays pending
    sigset_t pending;
    sigpending(&pending);
    CHECK(sigismember(&pending, SIGUSR1));
    CHECK(signal_received(set) == SIGUSR1);
}

TEST_CASE("a signal from a forked child reaches the parent's signal_set") {
    quiet_handlers q;
    signal_set set{SIGUSR2};
    int go[2];
    REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
    unique_fd go_r(go[0]), go_w(go[1]);
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) {
        go_w.reset();
        char c;
        ssize_t n;
        do n = ::read(go_r.get(), &c, 1);  // wait to be told
        while (n < 0 && errno == EINTR);
        ::_exit(n == 1 && ::kill(::getppid(), SIGUSR2) == 0 ? 0 : 1);
    }
    go_r.reset();
    auto body = [](const signal_set& s, int tell, child_process& c) -> task<int> {
        auto w = co_await io::write(tell, std::string_view("!"));
        REQUIRE(w.has_value());
        auto sig = co_await s.next();
        REQUIRE(sig.has_value());
        auto st = co_await c.wait();
        REQUIRE(st.has_value());
        CHECK(st->success());
        co_return *sig;
    };
    CHECK(sync_wait(body(set, go_w.get(), *child)) == SIGUSR2);
}

TEST_CASE("destroying a signal_set restores the signal mask") {
    quiet_handlers q;
    sigset_t block_usr2;
    sigemptyset(&block_usr2);
    sigaddset(&block_usr2, SIGUSR2);
    sigset_t before;
    REQUIRE(pthread_sigmask(SIG_BLOCK, &block_usr2, &before) == 0);  // USR2 blocked already
    REQUIRE_FALSE(blocked(SIGUSR1));
    REQUIRE(blocked(SIGUSR2));
    {
        signal_set set{SIGUSR1, SIGUSR2};
        CHECK(blocked(SIGUSR1));
        CHECK(blocked(SIGUSR2));
    }
    CHECK_FALSE(blocked(SIGUSR1));  // unblocked again: this set blocked it
    CHECK(blocked(SIGUSR2));        // still blocked: it was blocked before the set
    {
        // Nested sets: the inner one gives back only what it blocked itself.
        signal_set outer{SIGUSR1};
        {
            signal_set inner{SIGUSR1, SIGHUP};
            CHECK(blocked(SIGHUP));
        }
        CHECK(blocked(SIGUSR1));
        CHECK_FALSE(blocked(SIGHUP));
    }
    CHECK_FALSE(blocked(SIGUSR1));
    REQUIRE(pthread_sigmask(SIG_SETMASK, &before, nullptr) == 0);
    CHECK_FALSE(blocked(SIGUSR2));
}
