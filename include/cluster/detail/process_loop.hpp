// cluster::detail::with_process_loop(): a cluster process's one io_context, built before its
// role runs, or, when io_uring cannot be set up here, the reason on stderr and an exit code.
#pragma once

#include <cstdio>
#include <optional>
#include <system_error>

#include <cluster/exit_code.hpp>
#include <cluster/io/io_context.hpp>

namespace cluster::detail {

// Runs role() on this process's loop and returns what it returns. A missing io_uring is a
// setting to change, not a bug: it gets a message and exit_code::io_uring_unavailable, not
// an exception escaping main() and a core dump. The io_context constructor throws for
// nothing else.
template <class Role>
int with_process_loop(Role&& role) {
    std::optional<io::io_context> ctx;
    try {
        ctx.emplace();
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return exit_code::io_uring_unavailable;
    }
    return role();
}

}  // namespace cluster::detail
