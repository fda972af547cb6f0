// cluster::detail::raise_fd_limit(): the primary's soft RLIMIT_NOFILE raised to its hard limit,
// as Node raises its own as it starts, since the primary holds 2 to 4 descriptors per worker.
#pragma once

#include <sys/resource.h>

#include <string>

namespace cluster::detail {

// 256 workers with relayed output take over 1,024 descriptors, the usual soft limit; the hard
// limit is the administrator's bound (systemd's default is 524,288), and stays. Workers inherit
// the raised limit, as Node's children do.
inline void raise_fd_limit() noexcept {
    rlimit l{};
    if (::getrlimit(RLIMIT_NOFILE, &l) != 0 || l.rlim_cur >= l.rlim_max) return;
    l.rlim_cur = l.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &l);
}

// What a worker that could not start for want of descriptors adds to its error message.
inline std::string fd_limit_note() {
    rlimit l{};
    if (::getrlimit(RLIMIT_NOFILE, &l) != 0) return {};
    return " (the primary is at RLIMIT_NOFILE, " + std::to_string(l.rlim_cur) +
           " descriptors: each worker takes 2 to 4 of them; raise the hard limit, e.g. LimitNOFILE=)";
}

}  // namespace cluster::detail
