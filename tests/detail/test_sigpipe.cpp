// detail::ignore_sigpipe on its own: a write to a closed pipe is EPIPE, a program's own choice
// is kept, and what the process execs gets SIGPIPE's default back.
#include <catch2/catch.hpp>

#include "support/descriptors.hpp"

#include <cluster/detail/sigpipe.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

extern char** environ;

namespace {

// SIGPIPE as `action` while this lives, then as it was.
class sigpipe_as {
public:
    explicit sigpipe_as(void (*action)(int)) {
        struct sigaction sa {};
        sa.sa_handler = action;
        ::sigaction(SIGPIPE, &sa, &old_);
    }
    sigpipe_as(const sigpipe_as&) = delete;
    sigpipe_as& operator=(const sigpipe_as&) = delete;
    ~sigpipe_as() { ::sigaction(SIGPIPE, &old_, nullptr); }

private:
    struct sigaction old_ {};
};

void (*sigpipe_now())(int) {
    struct sigaction now {};
    ::sigaction(SIGPIPE, nullptr, &now);
    return now.sa_handler;
}

void programs_own(int) {}

// The exit code of a shell that exits 0 if its SIGPIPE is at the default, 1 if it is ignored
// (SigIgn's bit 12); it shows what a program this process execs starts with.
int spawned_shell_ignores_sigpipe() {
    char sh[] = "/bin/sh", c[] = "-c";
    char script[] = "m=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status); exit $(( (0x$m >> 12) & 1 ))";
    char* argv[] = {sh, c, script, nullptr};
    pid_t pid = 0;
    REQUIRE(::posix_spawn(&pid, sh, nullptr, nullptr, argv, environ) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("with SIGPIPE's default replaced, a write to a pipe nobody reads is EPIPE") {
    const sigpipe_as dfl(SIG_DFL);
    cluster::detail::ignore_sigpipe();
    CHECK(sigpipe_now() != SIG_DFL);
    auto [read_end, write_end] = support::make_pipe();
    read_end.reset();
    CHECK(::write(write_end.get(), "x", 1) == -1);
    CHECK(errno == EPIPE);
}

TEST_CASE("a program's own SIGPIPE handler, or its SIG_IGN, is kept") {
    {
        const sigpipe_as own(programs_own);
        cluster::detail::ignore_sigpipe();
        CHECK(sigpipe_now() == programs_own);
    }
    const sigpipe_as ignored(SIG_IGN);
    cluster::detail::ignore_sigpipe();
    CHECK(sigpipe_now() == SIG_IGN);
}

TEST_CASE("what the process execs starts with SIGPIPE's default, where SIG_IGN would be inherited") {
    {
        const sigpipe_as dfl(SIG_DFL);
        cluster::detail::ignore_sigpipe();
        CHECK(spawned_shell_ignores_sigpipe() == 0);
    }
    const sigpipe_as ignored(SIG_IGN);
    CHECK(spawned_shell_ignores_sigpipe() == 1);  // the shell's check itself sees SIG_IGN
}
