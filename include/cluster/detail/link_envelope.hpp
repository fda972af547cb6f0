// cluster::detail::link_envelope: one message on a link between a primary and a worker as its
// receiver gets it — a control message or a user's (raw off a socket, boxed off a thread link).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/ipc/channel.hpp>

namespace cluster::detail {

struct link_envelope {
    control::link_protocol::variant value;
    std::uint32_t tag = 0;
    std::uint16_t flags = 0;
    // A user's message from a thread: moved as itself, already of the user's protocol. `value`
    // then holds a raw_message with its type id and nothing else.
    boxed_message boxed;

    link_envelope() = default;
    link_envelope(control::link_protocol::variant v, std::uint32_t t, std::uint16_t f, boxed_message b = {})
        : value(std::move(v)), tag(t), flags(f), boxed(std::move(b)) {}
    explicit link_envelope(ipc::envelope<control::link_protocol>&& e) noexcept
        : value(std::move(e.value)), tag(e.tag), flags(e.flags) {}

    [[nodiscard]] bool is_boxed() const noexcept { return boxed.value != nullptr; }
};

// What a link_envelope weighs toward a thread link's high-water mark: its payload's bytes, as a
// frame's would, and the envelope itself.
inline std::size_t weigh(const link_envelope& e) noexcept { return sizeof(link_envelope) + e.boxed.size; }

}  // namespace cluster::detail
