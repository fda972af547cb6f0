// cluster::is_primary(), is_worker(), this_worker_id(): which side of a cluster this
// process is on. A worker was forked by its primary, or exec'd with CLUSTER_WORKER_ID set.
#pragma once

#include <charconv>
#include <cstdlib>
#include <cstring>

namespace cluster {

namespace detail {

// What an exec'd worker finds in its environment (Node's NODE_UNIQUE_ID).
inline constexpr const char* worker_id_env = "CLUSTER_WORKER_ID";
inline constexpr const char* channel_fd_env = "CLUSTER_CHANNEL_FD";

// A positive decimal number, or 0 when text is missing or anything else.
inline unsigned parse_positive(const char* text) noexcept {
    if (!text) return 0;
    unsigned value = 0;
    const char* end = text + std::strlen(text);
    auto [ptr, ec] = std::from_chars(text, end, value);
    return ec == std::errc{} && ptr == end ? value : 0;
}

struct role {
    bool worker = false;
    unsigned id = 0;  // the worker's id; 0 in the primary
};

// Read once from the environment; a forked worker sets it when it starts.
inline role& current_role() noexcept {
    static role r = [] {
        const char* id = std::getenv(worker_id_env);
        return role{id != nullptr, parse_positive(id)};
    }();
    return r;
}

}  // namespace detail

[[nodiscard]] inline bool is_worker() noexcept { return detail::current_role().worker; }
[[nodiscard]] inline bool is_primary() noexcept { return !is_worker(); }
// This worker's id (1, 2, 3…), or 0 in the primary.
[[nodiscard]] inline unsigned this_worker_id() noexcept { return detail::current_role().id; }

}  // namespace cluster
