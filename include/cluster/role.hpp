// cluster::is_primary(), is_worker(), this_worker_id(), getenv(): which side of a cluster this
// process (or thread) is on, and its environment. A worker was forked by its primary, exec'd
// with CLUSTER_WORKER_ID set, or started as a thread of the primary's process.
#pragma once

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

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
    // A thread worker's env option, over the process's environment (see cluster::getenv).
    const std::map<std::string, std::string>* env = nullptr;
};

// The process's: read once from the environment; a forked worker sets it when it starts.
inline role& process_role() noexcept {
    static role r = [] {
        const char* id = std::getenv(worker_id_env);
        return role{id != nullptr, parse_positive(id), nullptr};
    }();
    return r;
}

// A thread worker's own, for as long as its thread runs the worker; else none.
inline const role*& thread_role() noexcept {
    static thread_local const role* r = nullptr;
    return r;
}

inline const role& current_role() noexcept {
    const role* mine = thread_role();
    return mine ? *mine : process_role();
}

}  // namespace detail

[[nodiscard]] inline bool is_worker() noexcept { return detail::current_role().worker; }
[[nodiscard]] inline bool is_primary() noexcept { return !is_worker(); }
// This worker's id (1, 2, 3…), or 0 in the primary.
[[nodiscard]] inline unsigned this_worker_id() noexcept { return detail::current_role().id; }

// The environment variable `name` as this worker sees it: std::getenv's, except in a thread
// worker, which sees its env option over the process's environment (threads share the
// process's, so a thread worker's own variables cannot be set there). Null if unset.
[[nodiscard]] inline const char* getenv(const char* name) noexcept {
    if (const auto* env = detail::current_role().env) {
        if (auto it = env->find(name); it != env->end()) return it->second.c_str();
    }
    return std::getenv(name);
}

}  // namespace cluster
