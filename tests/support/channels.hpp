// support: a channel whose other end a forked child writes, as a worker would, on a loop
// of its own: for what crosses between processes.
#pragma once

#include <unistd.h>

#include <utility>

#include <cluster/io.hpp>
#include <cluster/ipc.hpp>

namespace support {

// Forks a child that runs write(out) on its own loop, with `out` the other end of the
// channel returned, and exits with what that task returns. Needs the caller's io_context.
template <class P, class Write>
std::pair<cluster::channel<P>, cluster::child_process> channel_from_child(cluster::ipc::channel_options o,
                                                                          Write write) {
    auto [mine, theirs] = cluster::ipc::make_socket_pair().value();
    auto child = cluster::child_process::fork().value();
    if (child.is_child()) {
        mine.reset();
        int status = 0;
        {
            cluster::io_context child_ctx;
            cluster::channel<P> out(std::move(theirs), o);
            status = cluster::sync_wait(write(out));
        }
        ::_exit(status);
    }
    theirs.reset();
    return {cluster::channel<P>(std::move(mine)), std::move(child)};
}

}  // namespace support
