// cluster::detail link helpers: turning what arrives on a primary–worker channel into
// the user's message<P>, and sending replies with the right tag.
#pragma once

#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include <cluster/control.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/message.hpp>
#include <cluster/wire/frame.hpp>

namespace cluster::detail {

// The user's message from a link message; nothing when it is one of the control messages.
template <class P>
std::optional<typename P::message> user_message(typename control::link_protocol<P>::message&& m) {
    return std::visit(
        [](auto&& v) -> std::optional<typename P::message> {
            using T = std::decay_t<decltype(v)>;
            if constexpr (P::template contains<T>)
                return std::optional<typename P::message>(std::in_place, std::in_place_type<T>, std::move(v));
            else
                return std::nullopt;
        },
        std::move(m));
}

// What arrived, as the user sees it: who sent it (a routed frame's tag names the worker it
// came from), and the tag a reply must carry.
template <class P>
std::optional<message<P>> to_incoming(ipc::envelope<control::link_protocol<P>>&& e, unsigned sender) {
    auto value = user_message<P>(std::move(e.message));
    if (!value) return std::nullopt;
    const bool routed = (e.flags & wire::frame_flags::routed) != 0;
    const bool request = (e.flags & wire::frame_flags::request) != 0;
    return message<P>{std::move(*value), routed ? e.tag : sender, request ? e.tag : 0};
}

// A request can only be answered by whoever received it.
template <class V>
void check_replyable(const incoming<V>& to) {
    if (!to.is_request())
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "cluster: reply() to a message that is not a request");
}

} // namespace cluster::detail
