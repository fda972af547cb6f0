// cluster::cpu_count(): how many CPUs this process may run on. That is its affinity mask
// (which taskset, cpusets and container runtimes narrow), not the machine's core count.
#pragma once

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace cluster {

inline unsigned cpu_count() noexcept {
    // The mask's size must cover the kernel's CPU count: grow it while the kernel says EINVAL.
    for (std::size_t cpus = 1024; cpus <= (std::size_t{1} << 20); cpus *= 2) {
        cpu_set_t* set = CPU_ALLOC(cpus);
        if (!set) break;
        const std::size_t size = CPU_ALLOC_SIZE(cpus);
        const int got = ::sched_getaffinity(0, size, set);
        const int count = got == 0 ? CPU_COUNT_S(size, set) : 0;
        const int err = errno;
        CPU_FREE(set);
        if (got == 0 && count > 0) return static_cast<unsigned>(count);
        if (got == 0 || err != EINVAL) break;
    }
    const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? static_cast<unsigned>(online) : 1;
}

}  // namespace cluster
