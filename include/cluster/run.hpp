// cluster::run<P>(): the entry point of a cluster program. In the primary it runs the
// primary's code; in each worker, forked or exec'd, the worker's; and returns the exit code.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/detail/process_loop.hpp>
#include <cluster/detail/worker_process.hpp>
#include <cluster/error.hpp>
#include <cluster/io/sync_wait.hpp>
#include <cluster/options.hpp>
#include <cluster/primary.hpp>
#include <cluster/role.hpp>
#include <cluster/worker.hpp>

namespace cluster {

namespace detail {

// An exec'd worker's channel: the descriptor its primary named in the environment.
inline unique_fd inherited_channel() {
    const unsigned fd = parse_positive(std::getenv(channel_fd_env));
    struct stat st {};
    if (this_worker_id() == 0 || fd == 0 || ::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode))
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                std::string("cluster: ") + worker_id_env + " is set, but " + channel_fd_env +
                                    " does not name this worker's channel (was it started by its primary?)");
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    // What this worker starts itself is not a worker.
    ::unsetenv(worker_id_env);
    ::unsetenv(channel_fd_env);
    return unique_fd(static_cast<int>(fd));
}

}  // namespace detail

// primary_main: task<void>(primary<P>&); worker_main: task<void>(worker<P>&). In the
// primary, returns once the cluster has stopped (see primary<P>::run) with an exit_code; in
// a worker, the worker's exit code. Either way, exit_code::io_uring_unavailable, with the
// reason on stderr, when this process cannot set up its io_uring. A primary that cannot start
// (a socket systemd passed is no listening socket, say) returns exit_code::failed, the
// reason on stderr. Throws std::system_error if a worker cannot start its role otherwise.
template <class P, class PrimaryMain, class WorkerMain>
int run(int argc, char** argv, PrimaryMain&& primary_main, WorkerMain&& worker_main, primary_options options = {}) {
    typename worker<P>::main_function on_worker(std::forward<WorkerMain>(worker_main));
    if (is_worker()) return detail::run_worker_process<P>(this_worker_id(), detail::inherited_channel(), on_worker);
    return detail::with_process_loop([&] {
        std::optional<primary<P>> p;
        try {
            p.emplace(std::move(options), std::move(on_worker), std::vector<std::string>(argv, argv + argc));
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "%s\n", e.what());
            return exit_code::failed;
        }
        return io::sync_wait(
            p->run(std::function<io::task<void>(primary<P>&)>(std::forward<PrimaryMain>(primary_main))));
    });
}

}  // namespace cluster
