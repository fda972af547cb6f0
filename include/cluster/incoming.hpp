// cluster::incoming<V> and message<P>: a message as it arrives — its value, which worker
// sent it (0: the primary), and, for a request, what reply() needs to answer it.
#pragma once

#include <cstdint>
#include <utility>
#include <variant>

#include <cluster/wire/protocol.hpp>

namespace cluster {

inline constexpr unsigned from_primary = 0;

template <class V>
struct incoming {
    V value;
    unsigned from = from_primary;   // the sending worker's id; from_primary for the primary
    std::uint32_t request_tag = 0;  // nonzero when the sender awaits a reply

    [[nodiscard]] bool is_request() const noexcept { return request_tag != 0; }

    // For V a variant (message<P>): which of P's types it holds.
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

// A message of any of P's types.
template <class P>
using message = incoming<typename P::message>;

}  // namespace cluster
