// cluster::detail::typed_parts: what the supervisor, the same code for every protocol, gets
// from primary<P> of the user's protocol P — decoding, handles, the worker process's life.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/thread_link.hpp>
#include <cluster/detail/worker_record.hpp>
#include <cluster/detail/worker_thread.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

struct typed_parts {
    protocol_ops ops;  // decodes the workers' messages to P's
    // The worker_handle<P> through which the user sees a worker.
    std::unique_ptr<worker_handle<erased>> (*make_handle)(worker_record&);
    // run_worker_process<P>: what a forked child runs, its id and its end of the link given.
    std::function<int(unsigned id, unique_fd link)> worker_process;
    // run_worker_thread<P>: what a thread worker runs, with its env option too.
    std::function<thread_outcome(unsigned id, thread_end link, const std::map<std::string, std::string>& env)>
        worker_thread;
};

}  // namespace cluster::detail
