// cluster::detail::ignore_sigpipe(): a write to a pipe or socket nobody reads fails with EPIPE
// instead of killing the process, in the primary and in every worker, as in Node.
#pragma once

#include <signal.h>

namespace cluster::detail {

// SIGPIPE's default action kills the writer: with it, `server | head -1` kills the primary at
// its next line of output (exit code 141), and every worker goes with it. io_uring raises it
// too, for a write (not a send) done at submission, as the stdio relay's are. Node ignores it
// in every process; so does this, so that a closed stdout is an EPIPE supervision shrugs off.
//
// A handler that does nothing rather than SIG_IGN: a caught signal goes back to its default
// across execve, so what the primary or a worker runs (system(), posix_spawn, an exec-mode
// worker) starts with the default that every program expects, where SIG_IGN would be
// inherited; libuv resets it in the children Node spawns for the same reason. SA_RESTART: a
// SIGPIPE sent from outside must not make some other call fail with EINTR.
//
// Only the default is replaced: a program that ignores SIGPIPE already, or installed its own
// handler, chose what it wants to happen and keeps it.
inline void ignore_sigpipe() noexcept {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) != 0) return;
    if ((current.sa_flags & SA_SIGINFO) || current.sa_handler != SIG_DFL) return;
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGPIPE, &sa, nullptr);
}

}  // namespace cluster::detail
