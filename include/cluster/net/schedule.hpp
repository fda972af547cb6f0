// cluster::net::schedule: how a listening endpoint's connections reach the workers (Node's
// schedulingPolicy and past it), and the user's own choice for schedule::custom.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>

#include <cluster/net/endpoint.hpp>

namespace cluster::net {

enum class schedule : std::uint8_t {
    round_robin,        // the primary accepts and hands each connection to the next worker (Node's SCHED_RR)
    shared,             // one listening socket, every worker accepts on it (Node's SCHED_NONE)
    reuseport,          // each worker its own SO_REUSEPORT socket; the kernel spreads connections (nginx)
    sticky,             // the primary hands a client address to the same worker while it lives
    least_connections,  // the primary hands each connection to the worker with the fewest open
    custom,             // the primary asks primary_options::pick
};

inline constexpr schedule last_schedule = schedule::custom;

inline const char* to_string(schedule s) noexcept {
    switch (s) {
    case schedule::round_robin: return "round_robin";
    case schedule::shared: return "shared";
    case schedule::reuseport: return "reuseport";
    case schedule::sticky: return "sticky";
    case schedule::least_connections: return "least_connections";
    case schedule::custom: return "custom";
    }
    return "unknown";
}

inline std::optional<schedule> parse_schedule(std::string_view text) noexcept {
    for (auto s = static_cast<std::uint8_t>(schedule::round_robin); s <= static_cast<std::uint8_t>(last_schedule); ++s)
        if (text == to_string(static_cast<schedule>(s))) return static_cast<schedule>(s);
    return std::nullopt;
}

// The primary accepts, and chooses the worker, for every schedule but shared and reuseport.
inline constexpr bool primary_accepts(schedule s) noexcept { return s != schedule::shared && s != schedule::reuseport; }

// A worker that could take a connection, for primary_options::pick.
struct candidate {
    unsigned worker_id = 0;
    std::size_t connections = 0;  // handed to it through this endpoint and not closed yet
};

// schedule::custom: the id of the worker that gets a connection from `client`, one of
// `live` (never empty). Any other answer falls back to round robin.
using pick_function = std::function<unsigned(const endpoint& client, std::span<const candidate> live)>;

}  // namespace cluster::net
