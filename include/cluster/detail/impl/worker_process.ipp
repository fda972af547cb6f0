// cluster::detail::run_worker_process() and run_worker_thread()'s definitions. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <signal.h>

#include <optional>
#include <utility>

#include <cluster/detail/process_loop.hpp>
#include <cluster/detail/sigpipe.hpp>
#include <cluster/detail/worker_process.hpp>
#include <cluster/io/sync_wait.hpp>
#include <cluster/role.hpp>

namespace cluster::detail {

// Ctrl-C in a terminal signals the whole process group. The primary turns it into a graceful
// stop; a worker that died of it at once would drop its work. A handler rather than SIG_IGN,
// so that what the worker execs gets the default back.
inline void ignore_interrupts() noexcept {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
}

// logrotate's postrotate, or `kill -USR1 -PGID`, may signal the whole process group: the
// primary reopens its log, and a worker must not die of the default action instead. Only the
// default is replaced: an exec'd worker program that reopens logs of its own keeps its handler.
inline void survive_log_reopen() noexcept {
    struct sigaction current {};
    if (::sigaction(SIGUSR1, nullptr, &current) != 0 || (current.sa_flags & SA_SIGINFO) ||
        current.sa_handler != SIG_DFL)
        return;
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGUSR1, &sa, nullptr);
}

CLUSTER_DECL int run_worker_process(unsigned id, unique_fd link, const protocol_ops& ops,
                                    const std::function<io::task<void>(worker_core&)>& main) {
    process_role() = role{true, id, nullptr};
    ignore_interrupts();
    survive_log_reopen();
    // Node's workers are Node processes, which ignore SIGPIPE: so do these, forked or exec'd,
    // or a worker printing to the closed stdout it shares with its primary would die at each
    // line, and be restarted to die again. A forked worker comes here with the primary's
    // disposition, a handler reset to the default (see child_setup); an exec'd one with the
    // default (see child_setup::exec), or with the handler its main() installed before run(),
    // which it keeps.
    ignore_sigpipe();
    return with_process_loop([&] {
        worker_core core(id, std::move(link), ops);
        return io::sync_wait(core.run(main));
    });
}

CLUSTER_DECL thread_outcome run_worker_thread(unsigned id, thread_end link,
                                              const std::map<std::string, std::string>& env, const protocol_ops& ops,
                                              const std::function<io::task<void>(worker_core&)>& main) {
    const role mine{true, id, &env};
    struct own_role {
        explicit own_role(const role& r) noexcept { thread_role() = &r; }
        ~own_role() { thread_role() = nullptr; }
    } scoped(mine);
    std::optional<io::io_context> ctx;
    try {
        ctx.emplace();
    } catch (const std::system_error& e) {
        return {exit_code::io_uring_unavailable, e.what()};
    }
    worker_core core(id, std::move(link), ops);
    const int code = io::sync_wait(core.run(main));
    return {code, core.failure()};
}

}  // namespace cluster::detail
