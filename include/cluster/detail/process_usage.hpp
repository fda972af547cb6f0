// cluster::detail::process_usage: what a process has used so far — CPU time and resident
// memory, as /proc/<pid>/stat and /proc/<pid>/statm say — for the primary's status().
#pragma once

#include <cluster/config.hpp>

#include <sys/types.h>

#include <cstdint>
#include <string_view>

#include <cluster/result.hpp>

namespace cluster::detail {

struct process_usage {
    double cpu_seconds = 0;  // user + system
    std::uint64_t rss_bytes = 0;
};

// The CPU seconds in the text of /proc/<pid>/stat; invalid_argument if it is not such a text.
CLUSTER_DECL result<double> cpu_seconds_in_stat(std::string_view stat);

// Of process `pid`, now; errno's code if it is gone (ESRCH/ENOENT) or its files do not read.
CLUSTER_DECL result<process_usage> usage_of(pid_t pid);

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/process_usage.ipp>
#endif
