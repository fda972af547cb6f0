// detail::cpu_pin: which CPU a slot's worker gets from a mask with gaps (a cpuset), counting
// round it; the pin this thread's own mask gives, and applying it in a child.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <initializer_list>
#include <vector>

#include <catch2/catch.hpp>

#include <cluster/detail/cpu_pin.hpp>

using cluster::detail::cpu_pin;
using cluster::detail::nth_allowed_cpu;

namespace {

cpu_set_t mask_of(std::initializer_list<int> cpus) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : cpus) CPU_SET(cpu, &set);
    return set;
}

std::vector<int> own_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    REQUIRE(::sched_getaffinity(0, sizeof set, &set) == 0);
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
    return cpus;
}

}  // namespace

TEST_CASE("nth_allowed_cpu() counts only the CPUs in the mask, round and round") {
    const cpu_set_t gaps = mask_of({1, 3, 6});
    const std::vector<int> picked{nth_allowed_cpu(&gaps, sizeof gaps, 0), nth_allowed_cpu(&gaps, sizeof gaps, 1),
                                  nth_allowed_cpu(&gaps, sizeof gaps, 2), nth_allowed_cpu(&gaps, sizeof gaps, 3),
                                  nth_allowed_cpu(&gaps, sizeof gaps, 7)};
    CHECK(picked == std::vector<int>{1, 3, 6, 1, 3});
    const cpu_set_t none = mask_of({});
    CHECK(nth_allowed_cpu(&none, sizeof none, 0) == -1);
}

TEST_CASE("cpu_pin::for_slot() picks from this thread's own mask, and a child that applies it runs there alone") {
    const auto cpus = own_cpus();
    for (unsigned slot = 1; slot <= cpus.size() + 1; ++slot) {
        const auto pin = cpu_pin::for_slot(slot);
        REQUIRE(pin.has_value());
        CHECK(pin->cpu() == cpus[(slot - 1) % cpus.size()]);
    }
    const auto pin = cpu_pin::for_slot(2);
    REQUIRE(pin.has_value());
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        const bool alone = pin->apply() == 0 && ::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1 &&
                           CPU_ISSET(pin->cpu(), &set);
        ::_exit(alone ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}
