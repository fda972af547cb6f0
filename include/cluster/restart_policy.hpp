// cluster::restart_policy: whether and when a dead worker is replaced — Erlang's
// permanent/transient/temporary, backoff with jitter, and a cap on restart storms.
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
};

}  // namespace cluster
