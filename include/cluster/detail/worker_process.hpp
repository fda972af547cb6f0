// cluster::detail::run_worker_process<P>(): the whole life of a worker process as the process
// itself sees it, forked or exec'd: its role, its own loop, and worker<P>'s run().
#pragma once

#include <signal.h>

#include <utility>

#include <cluster/io/io_context.hpp>
#include <cluster/io/sync_wait.hpp>
#include <cluster/role.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/worker.hpp>

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

template <class P>
int run_worker_process(unsigned id, unique_fd link, const typename worker<P>::main_function& main) {
    current_role() = role{true, id};
    ignore_interrupts();
    io::io_context ctx;
    worker<P> w(id, std::move(link));
    return io::sync_wait(w.run(main));
}

}  // namespace cluster::detail
