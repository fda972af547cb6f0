// cluster::detail::cpu_pin: primary_options::cpu_affinity — the one CPU a slot's worker runs
// on, chosen in the primary among the CPUs it may use, and set in the child before it runs.
#pragma once

#include <sched.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include <cluster/cpu_count.hpp>

namespace cluster::detail {

// The CPU that is the nth set in `set` (n counted mod their number, so any n has one); -1 if
// none is set.
inline int nth_allowed_cpu(const cpu_set_t* set, std::size_t size, unsigned n) noexcept {
    const int count = CPU_COUNT_S(size, set);
    if (count <= 0) return -1;
    unsigned left = n % static_cast<unsigned>(count);
    for (int cpu = 0; cpu < static_cast<int>(size * 8); ++cpu)
        if (CPU_ISSET_S(cpu, size, set) && left-- == 0) return cpu;
    return -1;
}

class cpu_pin {
public:
    // The CPU of `slot`: the ((slot - 1) mod count)th of those this thread may run on (its
    // affinity mask, which taskset and cpusets narrow), as nginx's worker_cpu_affinity auto
    // gives worker N CPU N. By slot, not by worker id: a replacement takes its predecessor's
    // CPU, where ids, which only grow, would soon put two workers on one CPU and none on
    // another. None if the mask cannot be read.
    static std::optional<cpu_pin> for_slot(unsigned slot) noexcept {
        std::optional<cpu_pin> pin;
        (void)with_affinity_mask([&](const cpu_set_t* set, std::size_t size) {
            const int cpu = nth_allowed_cpu(set, size, slot - 1);
            if (cpu >= 0) pin = cpu_pin::alone(cpu, size);
            return pin.has_value();
        });
        return pin;
    }

    [[nodiscard]] int cpu() const noexcept { return cpu_; }

    // In the child, before the worker's code: 0, or sched_setaffinity's errno.
    [[nodiscard]] int apply() const noexcept { return ::sched_setaffinity(0, size_, set_.get()) == 0 ? 0 : errno; }

    // What the child says on its stderr if apply() fails, before the error's description:
    // made in the primary, since a child forked from a threaded one must not allocate.
    [[nodiscard]] std::string warning_for(unsigned worker_id) const {
        return "cluster: worker " + std::to_string(worker_id) + ": cpu_affinity: cannot run on CPU " +
               std::to_string(cpu_) + " alone, so it runs unpinned: ";
    }

    // In the child: `warning`, then the description of `error`, on stderr. An unpinned worker
    // still serves, so a failed pin is said, not fatal.
    static void warn(const std::string& warning, int error) noexcept {
        const char* why = ::strerrordesc_np(error);
        if (!why) why = "unknown error";
        iovec parts[] = {{const_cast<char*>(warning.data()), warning.size()},
                         {const_cast<char*>(why), std::strlen(why)},
                         {const_cast<char*>("\n"), 1}};
        (void)!::writev(STDERR_FILENO, parts, 3);
    }

private:
    struct set_free {
        void operator()(cpu_set_t* s) const noexcept { CPU_FREE(s); }
    };

    cpu_pin(int cpu, std::size_t size, cpu_set_t* set) noexcept : cpu_(cpu), size_(size), set_(set) {}

    static std::optional<cpu_pin> alone(int cpu, std::size_t size) noexcept {
        cpu_set_t* set = CPU_ALLOC(size * 8);
        if (!set) return std::nullopt;
        CPU_ZERO_S(size, set);
        CPU_SET_S(static_cast<std::size_t>(cpu), size, set);
        return cpu_pin(cpu, size, set);
    }

    int cpu_;
    std::size_t size_;
    std::unique_ptr<cpu_set_t, set_free> set_;
};

}  // namespace cluster::detail
