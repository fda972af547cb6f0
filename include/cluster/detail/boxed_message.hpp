// cluster::detail::boxed_message: a user's message as the machinery under primary<P> and
// worker<P> holds it — decoded, of a type only those typed ends name — and protocol_ops, P's part.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>
#include <utility>

#include <cluster/detail/box_pool.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/wire/decode_error.hpp>
#include <cluster/wire/protocol.hpp>
#include <cluster/wire/raw_message.hpp>

namespace cluster::detail {

// What the machinery is instantiated with instead of the user's protocol: it is the same
// code, compiled once, whatever the protocol.
struct erased {};

class link;

struct boxed_message {
    std::shared_ptr<void> value;  // the user's P::variant
    std::uint32_t type_id = 0;
    std::size_t size = 0;  // its payload's bytes, toward the bounds of the queues it waits in
};

// What the machinery needs of the user's protocol, one signature for every protocol.
struct protocol_ops {
    // A peer's message decoded as one of P's, with the checks of a frame on arrival: an error
    // means the peer broke the protocol.
    wire::decode_result<boxed_message> (*decode)(wire::raw_message&);
    // Queues a boxed message on a link (a message from one worker, on its way to another);
    // `last`: the box is not queued again, and its message may be moved out of it.
    std::error_code (*queue)(link&, boxed_message&, bool last, std::uint32_t tag, std::uint16_t flags);
};

// The message in a box of protocol P's.
template <class P>
[[nodiscard]] typename P::variant& unbox(const boxed_message& b) noexcept {
    return *static_cast<typename P::variant*>(b.value.get());
}

template <class P>
wire::decode_result<boxed_message> decode_boxed(wire::raw_message& m) {
    auto decoded = wire::decode_raw<P>(m);
    if (!decoded) return decoded.error();
    return boxed_message{make_box<typename P::variant>(std::move(*decoded)), m.type_id, m.payload.size()};
}

}  // namespace cluster::detail
