// cluster::overload_counts: what a process of the cluster had to refuse, shed or drop because
// a bound was hit — descriptors run out, a queue full — counted from its start.
#pragma once

#include <cstdint>

namespace cluster {

// See docs/reliability.md for each bound and what an operator sees when it is hit.
struct overload_counts {
    std::uint64_t connections_shed = 0;  // primary: accepted, then closed unserved (no descriptor to hand it on)
    std::uint64_t accept_failures = 0;   // primary: accepts that failed for want of descriptors or memory
    std::uint64_t fds_lost = 0;          // descriptors the kernel closed for us at our limit: messages came without
    std::uint64_t events_dropped = 0;    // queued events (primary) or messages (worker) dropped, oldest first
};

}  // namespace cluster
