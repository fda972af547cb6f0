// cluster::restart_policy: whether and when a dead worker is replaced — Erlang's
// permanent/transient/temporary, backoff with jitter, and the caps on crash loops.
#pragma once

#include <chrono>

namespace cluster {

enum class restart_mode {
    permanent,  // always replaced
    transient,  // replaced after a crash; not after exit code 0 or a disconnect
    temporary,  // never replaced
};

struct restart_policy {
    restart_mode mode = restart_mode::permanent;
    std::chrono::milliseconds initial_delay{100};
    double factor = 1.5;
    std::chrono::milliseconds max_delay{15'000};
    // Each delay is scaled by a random factor in [1 - jitter, 1 + jitter], so workers that
    // died together do not all come back in the same millisecond.
    double jitter = 0.2;
    std::chrono::milliseconds stable_uptime{30'000};  // a worker up this long resets the backoff
    unsigned max_restarts = 10;                       // more restarts than this within `period`, of
    std::chrono::milliseconds period{10'000};         // workers up less than stable_uptime: give up
    // PM2's crash-loop cap, for a slot failing alone, which the backoff spaces out too far
    // for `max_restarts` in `period`: a worker that exits before coming online, or within
    // min_uptime of it, is unstable. More than max_unstable_restarts restarts of one slot in
    // a row, each after an unstable exit: give up. With the defaults, that is 11 unstable
    // exits after some 11 s of backoff (13.6 s at most with the jitter). min_uptime 0: no
    // exit is unstable.
    std::chrono::milliseconds min_uptime{1'000};
    unsigned max_unstable_restarts = 10;
};

}  // namespace cluster
