// cluster::net::schedule: how a listening endpoint's connections reach the workers (Node's
// schedulingPolicy and past it), and the user's own choice for schedule::custom.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>

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

// What the primary knows of a connection when it picks its worker: the client's address and,
// where the listener's sticky_key peeks, the first bytes of the request and the key in them.
struct pick_context {
    const endpoint& client;
    std::string_view peeked;  // the bytes peeked at (not consumed: the worker reads them all); empty when none
    std::string_view key;     // the sticky key's value found in them; empty when absent
};

namespace detail {
template <class F>
inline constexpr bool is_std_function = false;
template <class R, class... A>
inline constexpr bool is_std_function<std::function<R(A...)>> = true;
}  // namespace detail

// schedule::custom: the id of the worker that gets a connection, one of `live` (never empty).
// Any other answer falls back to round robin. It takes a function of the pick_context, or
// of the client's address alone (as it did before the context existed).
class pick_function {
public:
    using signature = unsigned(const pick_context&, std::span<const candidate>);

    pick_function() noexcept = default;
    pick_function(std::nullptr_t) noexcept {}

    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, pick_function> &&
                 std::is_invocable_r_v<unsigned, F&, const pick_context&, std::span<const candidate>>)
    pick_function(F f) {
        if (is_set(f)) f_ = std::move(f);
    }

    template <class F>
        requires(!std::is_same_v<std::remove_cvref_t<F>, pick_function> &&
                 !std::is_invocable_v<F&, const pick_context&, std::span<const candidate>> &&
                 std::is_invocable_r_v<unsigned, F&, const endpoint&, std::span<const candidate>>)
    pick_function(F f) {
        if (is_set(f))
            f_ = [by_address = std::move(f)](const pick_context& c, std::span<const candidate> live) mutable {
                return static_cast<unsigned>(by_address(c.client, live));
            };
    }

    explicit operator bool() const noexcept { return static_cast<bool>(f_); }

    unsigned operator()(const pick_context& c, std::span<const candidate> live) const { return f_(c, live); }
    unsigned operator()(const endpoint& client, std::span<const candidate> live) const {
        return f_(pick_context{client, {}, {}}, live);
    }

private:
    // An empty std::function, or a null function pointer, sets nothing.
    template <class F>
    static bool is_set(const F& f) noexcept {
        if constexpr (std::is_pointer_v<F>)
            return f != nullptr;
        else if constexpr (detail::is_std_function<F>)
            return static_cast<bool>(f);
        else
            return true;
    }

    std::function<signature> f_;
};

}  // namespace cluster::net
