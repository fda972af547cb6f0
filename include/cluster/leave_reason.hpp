// cluster::leave_reason: why a worker is leaving, as the primary tells it when it disconnects
// it — replaced by a successor, or going away for good — so that its clients can be told too.
#pragma once

#include <cstdint>

namespace cluster {

enum class leave_reason : std::uint8_t {
    staying,     // not asked to leave
    going_away,  // for good: a stop, a scale-down, a disconnect, the worker's own, the primary gone
    replaced,    // another worker takes its place: a rolling reload, a recycle, a binary upgrade
};

inline const char* to_string(leave_reason r) noexcept {
    switch (r) {
    case leave_reason::staying: return "staying";
    case leave_reason::going_away: return "going away";
    case leave_reason::replaced: return "replaced";
    }
    return "unknown";
}

}  // namespace cluster
