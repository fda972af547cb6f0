// This process's CPU time, every thread of it, user and system: what a benchmark reads when
// its figure is CPU spent rather than time passed, which does not depend on the scheduler.
#pragma once

#include <sys/resource.h>

namespace bench {

inline double own_cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace bench
