// cluster::detail::link<P>: one end of the channel between a primary and a worker, what both
// ends offer their users through it (link_end: send, request, reply), and how arrivals
// become incoming<P>.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <cluster/detail/control.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/awaited_temporary.hpp>
#include <cluster/io/task.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/ipc/request_table.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/frame.hpp>

namespace cluster::detail {

// The user's message from a link message; nothing when it is one of the control messages.
template <class P>
std::optional<typename P::variant> user_message(typename control::link_protocol<P>::variant&& m) {
    return std::visit(
        [](auto&& v) -> std::optional<typename P::variant> {
            using T = std::decay_t<decltype(v)>;
            if constexpr (P::template contains<T>)
                return std::optional<typename P::variant>(std::in_place, std::in_place_type<T>, std::move(v));
            else
                return std::nullopt;
        },
        std::move(m));
}

// What arrived, as the user sees it: who sent it (a routed frame's tag names the worker it
// came from), and the tag a reply must carry.
template <class P>
std::optional<incoming<P>> to_incoming(ipc::envelope<control::link_protocol<P>>&& e, unsigned sender) {
    auto value = user_message<P>(std::move(e.value));
    if (!value) return std::nullopt;
    const bool routed = (e.flags & wire::frame_flags::routed) != 0;
    const bool request = (e.flags & wire::frame_flags::request) != 0;
    return incoming<P>{std::move(*value), routed ? e.tag : sender, request ? e.tag : 0};
}

// A request can only be answered by whoever received it.
template <class V>
void check_replyable(const incoming<V>& to) {
    if (!to.is_request())
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "cluster: reply() to a message that is not a request");
}

// One end of the channel between a primary and a worker: the channel, which carries the
// control messages beside P's, and the requests sent on it that wait for their answers.
template <class P>
struct link {
    using protocol = control::link_protocol<P>;

    explicit link(unique_fd socket) : channel(std::move(socket)) {}

    ipc::channel<protocol> channel;
    ipc::request_table<typename protocol::variant> requests;
};

// Owns a link for a class that offers it through link_end: as a base, it exists before
// link_end, which refers to it (the base-from-member idiom).
template <class P>
struct link_owner {
    explicit link_owner(unique_fd socket) : owned_link(std::move(socket)) {}
    link<P> owned_link;
};

// What both ends offer their users alike: send, request, reply. Each takes its message as
// T&&, to refuse the temporaries GCC 12 would destroy twice (io::refuse_awaited_temporary).
template <class P>
class link_end {
public:
    using protocol = P;

    link_end(const link_end&) = delete;
    link_end& operator=(const link_end&) = delete;

    template <class T>
        requires wire::message_of<std::remove_cvref_t<T>, P>
    [[nodiscard]] auto send(T&& msg) {
        io::refuse_awaited_temporary<T>();
        return link_.channel.send(msg);
    }

    // Asks the other end and waits up to `timeout` for its reply, a Reply. Errors:
    // timed_out, peer_gone (the other end disconnected or died first), unexpected_type
    // (it answered with another type), or the send's.
    template <wire::message_of<P> Reply, class T, class Rep = std::int64_t, class Period = std::milli>
        requires wire::message_of<std::remove_cvref_t<T>, P>
    io::task<result<Reply>> request(T&& msg, std::chrono::duration<Rep, Period> timeout = std::chrono::seconds(5)) {
        io::refuse_awaited_temporary<T>();
        return ipc::request<Reply>(link_.channel, link_.requests, msg, timeout);
    }

    // Answers a request that came in on this link.
    template <class M, class R>
        requires wire::message_of<std::remove_cvref_t<R>, P>
    [[nodiscard]] auto reply(const incoming<M>& to, R&& response) {
        io::refuse_awaited_temporary<R>();
        check_replyable(to);
        return link_.channel.send(response, to.request_tag, wire::frame_flags::response);
    }

    [[nodiscard]] const ipc::channel_stats& stats() const noexcept { return link_.channel.stats(); }

protected:
    explicit link_end(link<P>& l) noexcept : link_(l) {}
    ~link_end() = default;

    link<P>& link_;
};

}  // namespace cluster::detail
