// cluster::wire::type_name<T> and type_id<T>: a message type's stable name and 32-bit id.
// The name comes from the compiler unless the type opts into one of its own.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>

namespace cluster::wire {

// Specialise to name a type you cannot edit: value is the name both peers must agree on.
template <class T>
struct name_of {};

namespace detail {

template <class T>
concept has_member_name = requires {
    { T::cluster_name } -> std::convertible_to<std::string_view>;
};

template <class T>
concept has_trait_name = requires {
    { name_of<T>::value } -> std::convertible_to<std::string_view>;
};

// g++ spells it "... pretty() [with T = app::job]", clang "... pretty() [T = app::job]".
// Returning const char* keeps g++ from appending "; alias = ..." after T.
template <class T>
constexpr const char* pretty() noexcept {
    return __PRETTY_FUNCTION__;
}

template <class T>
constexpr std::string_view compiler_name() noexcept {
    constexpr std::string_view full = pretty<T>();
    constexpr std::string_view marker = "T = ";
    constexpr auto start = full.find(marker) + marker.size();
    constexpr auto stop = full.rfind(']');
    static_assert(full.find(marker) != std::string_view::npos && stop > start,
                  "cluster::wire: unrecognised __PRETTY_FUNCTION__ format");
    return full.substr(start, stop - start);
}

// FNV-1a: tiny, constexpr, and good enough that the protocol's duplicate-id check
// is what catches the rare collision.
constexpr std::uint32_t fnv1a32(std::string_view s) noexcept {
    std::uint32_t h = 2166136261u;
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    return h;
}

}  // namespace detail

// The name a peer knows T by. Opt in with `static constexpr std::string_view cluster_name`
// or a name_of<T> specialisation; otherwise the compiler's spelling, which g++ 12 and
// clang++ 14 agree on for non-template classes in named namespaces. Templates, local
// classes and anonymous namespaces are spelled differently: give those a cluster_name.
template <class T>
constexpr std::string_view type_name() noexcept {
    if constexpr (detail::has_member_name<T>)
        return T::cluster_name;
    else if constexpr (detail::has_trait_name<T>)
        return name_of<T>::value;
    else
        return detail::compiler_name<T>();
}

template <class T>
inline constexpr std::uint32_t type_id = detail::fnv1a32(type_name<T>());

}  // namespace cluster::wire
