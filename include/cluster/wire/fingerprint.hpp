// cluster::wire::fingerprint<T> and schema<T>(): a 64-bit hash of T's canonical schema.
// Peers built from different code disagree on it, so a frame of the wrong shape is refused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <cluster/wire/codec.hpp>

namespace cluster::wire {

namespace detail {

struct fnv1a64_sink {
    std::uint64_t hash = 14695981039346656037ull;
    constexpr void operator()(std::string_view s) noexcept {
        for (char c : s) hash = (hash ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    }
};

struct text_sink {
    std::string text;
    void operator()(std::string_view s) { text += s; }
};

}  // namespace detail

// The codec's own spelling, not the compiler's: member names, enumerator names and values,
// and the wire shape of every member, recursively. Struct names are left out on purpose
// (the type id covers the message's own name); renaming a nested struct changes nothing
// on the wire, so it does not change the fingerprint either.
template <class T>
[[nodiscard]] std::string schema() {
    static_assert(detail::checked<T>);
    detail::text_sink sink;
    codec<T>::spell(sink);
    return std::move(sink.text);
}

template <class T>
inline constexpr std::uint64_t fingerprint = [] {
    static_assert(detail::checked<T>);
    detail::fnv1a64_sink sink;
    codec<T>::spell(sink);
    return sink.hash;
}();

}  // namespace cluster::wire
