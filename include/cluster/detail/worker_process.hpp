// cluster::detail::run_worker_process() and run_worker_thread(): the whole life of a worker as
// it sees it itself, a process forked or exec'd or a thread: its role, its own loop, and its
// code, as worker<P>'s.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>

#include <cluster/config.hpp>
#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/thread_link.hpp>
#include <cluster/detail/worker_core.hpp>
#include <cluster/detail/worker_thread.hpp>
#include <cluster/io/task.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/worker.hpp>

namespace cluster::detail {

// The process's life around worker_core::run(): returns the worker's exit code.
CLUSTER_DECL int run_worker_process(unsigned id, unique_fd link, const protocol_ops& ops,
                                    const std::function<io::task<void>(worker_core&)>& main);

// A thread worker's life, on its own thread and loop: returns its exit code, and what its code
// threw. `env` is its env option, which cluster::getenv() shows it over the process's.
CLUSTER_DECL thread_outcome run_worker_thread(unsigned id, thread_end link,
                                              const std::map<std::string, std::string>& env, const protocol_ops& ops,
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

template <class P>
thread_outcome run_worker_thread(unsigned id, thread_end link, const std::map<std::string, std::string>& env,
                                 const typename worker<P>::main_function& main) {
    return run_worker_thread(id, std::move(link), env, ops_of<P>,
                             [&main](worker_core& core) { return run_as<P>(core, main); });
}

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/worker_process.ipp>
#endif
