// child_process: forked children held through pidfds — exit codes, deaths by signal,
// send_signal, try_wait, kill-and-reap on destruction, adopt(), and no leaks of
// zombies or descriptors over many cycles.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>

#include "support/descriptors.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

using namespace cluster;

namespace {

// A child that waits until its end of the pipe is closed (or written to), then exits.
[[noreturn]] void child_wait_for_pipe_then_exit(int read_end, int code) {
    char c;
    ssize_t n;
    do n = ::read(read_end, &c, 1);
    while (n < 0 && errno == EINTR);
    ::_exit(code);
}

[[noreturn]] void park_until_killed() {
    for (;;) ::pause();
}

using support::open_fd_count;

bool is_reaped(pid_t pid) {
    int status;
    return ::waitpid(pid, &status, WNOHANG) < 0 && errno == ECHILD;
}

bool proc_entry_exists(pid_t pid) {
    struct stat st;
    return ::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0;
}

task<result<exit_status>> wait_for(child_process& c) { co_return co_await c.wait(); }

}  // namespace

TEST_CASE("fork, exit with a code, wait returns it") {
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) ::_exit(7);
    CHECK_FALSE(child->is_child());
    CHECK(child->pid() > 0);
    CHECK(child->pidfd() >= 0);
    CHECK(child->running());
    auto st = sync_wait(wait_for(*child));
    REQUIRE(st.has_value());
    CHECK(st->exited());
    CHECK_FALSE(st->signaled());
    CHECK(st->code == 7);
    CHECK_FALSE(st->success());
    CHECK(st->to_string() == "exit code 7");
    CHECK_FALSE(child->running());
    REQUIRE(child->status().has_value());
    CHECK(*child->status() == *st);
    CHECK(is_reaped(child->pid()));
    // Waiting again gives the same answer without touching the kernel.
    auto again = sync_wait(wait_for(*child));
    REQUIRE(again.has_value());
    CHECK(again->code == 7);
}

TEST_CASE("a child killed by a signal reports the signal by name") {
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) park_until_killed();
    REQUIRE(child->send_signal(SIGKILL).has_value());
    auto st = sync_wait(wait_for(*child));
    REQUIRE(st.has_value());
    CHECK(st->signaled());
    CHECK(st->signal == SIGKILL);
    CHECK_FALSE(st->core_dumped);
    CHECK(st->to_string() == "signal SIGKILL");
    CHECK(is_reaped(child->pid()));
    // The process is gone: signalling the handle fails instead of hitting a reused pid.
    CHECK_FALSE(child->send_signal(SIGTERM).has_value());
}

TEST_CASE("send_signal delivers the signal the child is waiting for") {
    auto [r, w] = support::make_pipe();
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) {
        // Exit with the number of the signal that arrives; tell the parent we are ready.
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        if (::write(w.get(), "r", 1) != 1) ::_exit(100);
        int sig = 0;
        sigwait(&set, &sig);
        ::_exit(sig);
    }
    w.reset();
    auto body = [](child_process& c, int ready) -> task<result<exit_status>> {
        char ch;
        auto rd = co_await io::read(ready, std::span(&ch, 1));
        REQUIRE(rd.has_value());
        REQUIRE(*rd == 1);
        REQUIRE(c.send_signal(SIGUSR1).has_value());
        co_return co_await c.wait();
    };
    auto st = sync_wait(body(*child, r.get()));
    REQUIRE(st.has_value());
    CHECK(st->exited());
    CHECK(st->code == SIGUSR1);

    // A signal that is not caught ends it: SIGTERM by name. The child must not inherit
    // the test runner's own SIGTERM handler, so fork with the default action in place.
    struct sigaction dfl {
    }, old{};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGTERM, &dfl, &old);
    auto other = child_process::fork();
    if (other && other->is_child()) park_until_killed();
    ::sigaction(SIGTERM, &old, nullptr);
    REQUIRE(other.has_value());
    REQUIRE(other->send_signal(SIGTERM).has_value());
    auto st2 = sync_wait(wait_for(*other));
    REQUIRE(st2.has_value());
    CHECK(st2->to_string() == "signal SIGTERM");
}

TEST_CASE("try_wait before and after the child exits") {
    auto [r, w] = support::make_pipe();
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) {
        w.reset();
        child_wait_for_pipe_then_exit(r.get(), 3);
    }
    r.reset();
    auto early = child->try_wait();
    REQUIRE_FALSE(early.has_value());
    CHECK(early.error() == std::errc::resource_unavailable_try_again);
    CHECK(child->running());

    w.reset();  // the child sees EOF and exits
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, static_cast<id_t>(child->pid()), &info, WEXITED | WNOWAIT) == 0);  // exited, not reaped
    auto late = child->try_wait();
    REQUIRE(late.has_value());
    CHECK(late->code == 3);
    CHECK_FALSE(child->running());
    CHECK(is_reaped(child->pid()));
    auto again = child->try_wait();
    REQUIRE(again.has_value());
    CHECK(again->code == 3);
}

TEST_CASE("destroying the handle of a running child kills and reaps it") {
    pid_t pid;
    {
        auto child = child_process::fork();
        REQUIRE(child.has_value());
        if (child->is_child()) park_until_killed();
        pid = child->pid();
        CHECK(proc_entry_exists(pid));
    }
    CHECK(is_reaped(pid));  // no zombie: waitpid knows no such child
    CHECK_FALSE(proc_entry_exists(pid));

    // Moving a handle hands over the child; the moved-from handle owns nothing.
    auto a = child_process::fork();
    REQUIRE(a.has_value());
    if (a->is_child()) park_until_killed();
    pid = a->pid();
    child_process b = std::move(*a);
    CHECK_FALSE(a->running());
    CHECK(b.running());
    CHECK(b.pid() == pid);
    child_process c;
    c = std::move(b);
    CHECK(c.running());
    c = child_process{};  // move-assigning over a running child kills and reaps it
    CHECK(is_reaped(pid));
}

TEST_CASE("200 fork/wait cycles leave no zombie and no descriptor behind") {
    io_context ctx;
    const std::size_t fds_before = open_fd_count();
    auto body = []() -> task<int> {
        int good = 0;
        for (int i = 0; i < 200; ++i) {
            auto child = child_process::fork();
            REQUIRE(child.has_value());
            if (child->is_child()) ::_exit(i % 100);
            auto st = co_await child->wait();
            REQUIRE(st.has_value());
            good += st->code == i % 100;
        }
        co_return good;
    };
    CHECK(ctx.run_until(body()) == 200);
    CHECK(open_fd_count() == fds_before);
    int status;
    const pid_t left = ::waitpid(-1, &status, WNOHANG);
    const int err = errno;
    CHECK(left == -1);  // no child left at all, zombie or not
    CHECK(err == ECHILD);
}

TEST_CASE("adopt() takes charge of a child forked by other means") {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) ::_exit(5);
    auto child = child_process::adopt(pid);
    REQUIRE(child.has_value());
    CHECK(child->pid() == pid);
    CHECK_FALSE(child->is_child());
    auto st = sync_wait(wait_for(*child));
    REQUIRE(st.has_value());
    CHECK(st->code == 5);
    CHECK(is_reaped(pid));

    // Adopting a process that does not exist fails.
    auto none = child_process::adopt(pid);  // reaped: the pid is free
    CHECK_FALSE(none.has_value());

    // detach() lets a child go: the handle no longer kills it on destruction.
    pid_t free_pid = ::fork();
    REQUIRE(free_pid >= 0);
    if (free_pid == 0) park_until_killed();
    {
        auto h = child_process::adopt(free_pid);
        REQUIRE(h.has_value());
        h->detach();
        CHECK_FALSE(h->running());
    }
    CHECK(::kill(free_pid, 0) == 0);  // still alive
    ::kill(free_pid, SIGKILL);
    int status;
    REQUIRE(::waitpid(free_pid, &status, 0) == free_pid);
    CHECK(WIFSIGNALED(status));
}
