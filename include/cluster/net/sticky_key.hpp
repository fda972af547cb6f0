// cluster::net::sticky_key: what a sticky (or custom) schedule keys a connection by — the
// client's address, or a header, cookie or query parameter the primary peeks at in its request.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <type_traits>

namespace cluster::net {

// The most a sticky key may peek at: a request head past it is cut there, and keyed by
// whatever the first bytes show (or by address).
inline constexpr std::size_t max_peek_bytes = 64u * 1024;
inline constexpr std::chrono::milliseconds max_peek_timeout{10'000};
// The longest header, cookie or parameter name a key may have.
inline constexpr std::size_t max_key_name = 63;

struct sticky_key {
    enum class source : std::uint8_t {
        address,  // the client's address: no peek (behind a proxy, the proxy's)
        header,   // a request header's value; of a list ("a, b"), the first (X-Forwarded-For's client)
        cookie,   // a cookie's value, from the Cookie headers
        query,    // a query parameter's value, from the request target
    };

    source from = source::address;
    // The primary peeks at most this many bytes of the request head, and waits for them at
    // most this long; a key not found by then falls back to the client's address.
    std::size_t peek_bytes = 4096;
    std::chrono::milliseconds peek_timeout{100};

    static sticky_key address() { return {}; }
    // Each throws std::length_error for a name longer than max_key_name.
    static sticky_key header(std::string_view name) { return named(source::header, name); }
    static sticky_key cookie(std::string_view name) { return named(source::cookie, name); }
    static sticky_key query(std::string_view name) { return named(source::query, name); }

    // The header (any case), cookie or parameter (exact) it is read from.
    [[nodiscard]] std::string_view name() const noexcept { return {name_.data(), name_size_}; }
    // Whether the primary peeks at a connection's first bytes for it.
    [[nodiscard]] bool peeks() const noexcept { return from != source::address; }

private:
    static sticky_key named(source from, std::string_view name) {
        if (name.size() > max_key_name) throw std::length_error("cluster: a sticky key's name is longer than 63 bytes");
        sticky_key k;
        k.from = from;
        std::copy(name.begin(), name.end(), k.name_.begin());
        k.name_size_ = static_cast<std::uint8_t>(name.size());
        return k;
    }

    // Held in place, not in a std::string: listener_options stays trivially destructible, so
    // that `co_await w.listen(at, how, {...})` is safe with g++ 12, which destroys a braced
    // temporary with a destructor twice inside a co_await expression (docs/runtime.md).
    std::array<char, max_key_name> name_{};
    std::uint8_t name_size_ = 0;
};

static_assert(std::is_trivially_destructible_v<sticky_key>);

inline const char* to_string(sticky_key::source s) noexcept {
    switch (s) {
    case sticky_key::source::address: return "address";
    case sticky_key::source::header: return "header";
    case sticky_key::source::cookie: return "cookie";
    case sticky_key::source::query: return "query";
    }
    return "unknown";
}

// "address", or "KIND:NAME" with KIND header, cookie or query ("cookie:sid",
// "header:X-Forwarded-For") and NAME at most max_key_name bytes; nothing if it is neither.
inline std::optional<sticky_key> parse_sticky_key(std::string_view text) {
    if (text == "address") return sticky_key::address();
    const auto colon = text.find(':');
    if (colon == std::string_view::npos || colon + 1 == text.size()) return std::nullopt;
    const std::string_view name = text.substr(colon + 1);
    if (name.size() > max_key_name) return std::nullopt;
    const std::string_view kind = text.substr(0, colon);
    if (kind == "header") return sticky_key::header(name);
    if (kind == "cookie") return sticky_key::cookie(name);
    if (kind == "query") return sticky_key::query(name);
    return std::nullopt;
}

}  // namespace cluster::net
