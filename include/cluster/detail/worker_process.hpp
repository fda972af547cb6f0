// cluster::detail::run_worker_process(): the whole life of a worker process as the process
// itself sees it, forked or exec'd: its role, its own loop, and its code, as worker<P>'s.
#pragma once

#include <functional>
#include <utility>

#include <cluster/config.hpp>
#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/worker_core.hpp>
#include <cluster/io/task.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/worker.hpp>

namespace cluster::detail {

// The process's life around worker_core::run(): returns the worker's exit code.
CLUSTER_DECL int run_worker_process(unsigned id, unique_fd link, const protocol_ops& ops,
                                    const std::function<io::task<void>(worker_core&)>& main);

template <class P>
io::task<void> run_as(worker_core& core, const typename worker<P>::main_function& main) {
    worker<P> w(core);
    co_await main(w);
}

template <class P>
int run_worker_process(unsigned id, unique_fd link, const typename worker<P>::main_function& main) {
    return run_worker_process(id, std::move(link), ops_of<P>,
                              [&main](worker_core& core) { return run_as<P>(core, main); });
}

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/worker_process.ipp>
#endif
