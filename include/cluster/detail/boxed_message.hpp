// cluster::detail::boxed_message: a user's message as the machinery under primary<P> and
// worker<P> holds it — decoded, of a type only those typed ends name — and protocol_ops, P's part.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <cluster/detail/control.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/wire/decode_error.hpp>
#include <cluster/wire/protocol.hpp>
#include <cluster/wire/raw_message.hpp>

namespace cluster::detail {

// What the machinery is instantiated with instead of the user's protocol: it is the same
// code, compiled once, whatever the protocol.
struct erased {};

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
    // Queues a boxed message on a channel (a message from one worker, on its way to another).
    std::error_code (*queue)(ipc::channel<control::link_protocol>&, const boxed_message&, std::uint32_t tag,
                             std::uint16_t flags);
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
    return boxed_message{std::make_shared<typename P::variant>(std::move(*decoded)), m.type_id, m.payload.size()};
}

template <class P>
std::error_code queue_boxed(ipc::channel<control::link_protocol>& ch, const boxed_message& b, std::uint32_t tag,
                            std::uint16_t flags) {
    return std::visit(
        [&](const auto& m) {
            if constexpr (std::is_same_v<std::decay_t<decltype(m)>, std::monostate>)
                return std::error_code{};  // an empty protocol's: none is ever decoded
            else
                return ch.queue(m, tag, flags);
        },
        unbox<P>(b));
}

template <class P>
struct ops_for {
    static_assert(control::apart_from_control<P>,
                  "cluster: a message type has the type id of one of the cluster's own control messages (a hash "
                  "collision); give it a distinct cluster_name");
    static constexpr protocol_ops value{&decode_boxed<P>, &queue_boxed<P>};
};

// P's ops, for the machinery.
template <class P>
inline constexpr const protocol_ops& ops_of = ops_for<P>::value;

}  // namespace cluster::detail
