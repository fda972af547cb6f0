// cluster::cpu_count(): how many CPUs this process may run on. That is its affinity mask
// (which taskset, cpusets and container runtimes narrow), within its cgroups' CPU quota.
#pragma once

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>

#include <cluster/detail/cgroup_cpu_quota.hpp>

namespace cluster {

namespace detail {

// Calls use(set, size) with this thread's affinity mask, sized to cover the kernel's CPU
// count (grown while the kernel says EINVAL), and returns what it returns; false if the mask
// cannot be read.
template <class Use>
bool with_affinity_mask(Use use) noexcept {
    for (std::size_t cpus = 1024; cpus <= (std::size_t{1} << 20); cpus *= 2) {
        cpu_set_t* set = CPU_ALLOC(cpus);
        if (!set) return false;
        const std::size_t size = CPU_ALLOC_SIZE(cpus);
        const int got = ::sched_getaffinity(0, size, set);
        const int err = errno;
        const bool used = got == 0 && use(static_cast<const cpu_set_t*>(set), size);
        CPU_FREE(set);
        if (got == 0) return used;
        if (err != EINVAL) return false;
    }
    return false;
}

inline unsigned affinity_count() noexcept {
    int count = 0;
    const bool read = with_affinity_mask([&](const cpu_set_t* set, std::size_t size) {
        count = CPU_COUNT_S(size, set);
        return count > 0;
    });
    if (read) return static_cast<unsigned>(count);
    const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? static_cast<unsigned>(online) : 1;
}

}  // namespace detail

// A container given 2 CPUs of quota on a 128-core host counts 2 (rounded up: 1.5 CPUs is 2),
// so that one worker per CPU does not fork 128 workers that the quota then throttles.
inline unsigned cpu_count() noexcept {
    const unsigned affinity = detail::affinity_count();
    try {
        const auto quota = detail::cgroup_cpu_quota();
        return quota ? std::min(affinity, *quota) : affinity;
    } catch (...) {
        return affinity;  // out of memory reading /proc: the mask is still a right answer
    }
}

}  // namespace cluster
