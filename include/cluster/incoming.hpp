// cluster::incoming<M>: a message as it arrives — its value, which worker sent it (0: the
// primary), and, for a request, what reply() needs to answer it. M is one message type, or
// a protocol: then the value is whichever of the protocol's messages came (P::variant).
#pragma once

#include <cstdint>
#include <utility>
#include <variant>

#include <cluster/detail/boxed_message.hpp>
#include <cluster/wire/protocol.hpp>

namespace cluster {

inline constexpr unsigned from_primary = 0;

namespace detail {
template <class M>
struct incoming_value {
    using type = M;
};
template <class... Ts>
struct incoming_value<wire::protocol<Ts...>> {
    using type = typename wire::protocol<Ts...>::variant;
};
template <>
struct incoming_value<erased> {
    using type = boxed_message;
};
}  // namespace detail

template <class M>
struct incoming {
    using value_type = typename detail::incoming_value<M>::type;

    value_type value;
    unsigned from = from_primary;   // the sending worker's id; from_primary for the primary
    std::uint32_t request_tag = 0;  // nonzero when the sender awaits a reply

    [[nodiscard]] bool is_request() const noexcept { return request_tag != 0; }

    // For M a protocol: which of its messages the value holds.
    template <class T>
    [[nodiscard]] bool is() const noexcept {
        return std::holds_alternative<T>(value);
    }
    template <class T>
    [[nodiscard]] T* get_if() noexcept {
        return std::get_if<T>(&value);
    }
    template <class T>
    [[nodiscard]] const T* get_if() const noexcept {
        return std::get_if<T>(&value);
    }
    template <class T>
    [[nodiscard]] T& get() {
        return std::get<T>(value);
    }
    template <class F>
    decltype(auto) visit(F&& f) {
        return std::visit(std::forward<F>(f), value);
    }
};

}  // namespace cluster
