// cluster::detail::link: one end of the channel between a primary and a worker, what both
// ends offer their users through it (link_end<P>: send, request, reply), and how the user's
// messages that arrive on it become incoming<erased>.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

#include <cluster/detail/boxed_message.hpp>
#include <cluster/detail/control.hpp>
#include <cluster/incoming.hpp>
#include <cluster/io/awaited_temporary.hpp>
#include <cluster/io/task.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/ipc/request_table.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/frame.hpp>

namespace cluster::detail {

// One end of the channel between a primary and a worker: the channel, which carries the
// control messages beside the user's, and the requests sent on it that wait for their answers.
struct link {
    using protocol = control::link_protocol;
    using envelope = ipc::envelope<protocol>;

    explicit link(unique_fd socket) : channel(std::move(socket)) {}

    ipc::channel<protocol> channel;
    ipc::request_table<protocol::variant> requests;
};

// A user's message that arrived on a link (e holds a raw_message), decoded by the protocol's
// ops: who sent it (a routed frame's tag names the worker it came from), and the tag a reply
// must carry. A message that does not decode is the peer breaking the protocol: the link is
// cut off, saying why, and nothing is returned.
inline std::optional<incoming<erased>> to_incoming(link& l, const protocol_ops& ops, link::envelope&& e,
                                                   unsigned sender) {
    auto boxed = ops.decode(std::get<wire::raw_message>(e.value));
    if (!boxed) {
        l.channel.abort(boxed.error().code, std::move(boxed.error().path));
        return std::nullopt;
    }
    const bool routed = (e.flags & wire::frame_flags::routed) != 0;
    const bool request = (e.flags & wire::frame_flags::request) != 0;
    return incoming<erased>{std::move(*boxed), routed ? e.tag : sender, request ? e.tag : 0};
}

// A request can only be answered by whoever received it.
template <class V>
void check_replyable(const incoming<V>& to) {
    if (!to.is_request())
        throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                "cluster: reply() to a message that is not a request");
}

// Sends msg on l as a request and waits up to `timeout` for a Reply of protocol P. Errors:
// timed_out, peer_gone (the other end disconnected or died first), unexpected_type (it
// answered with another type), or the send's. An answer that does not decode cuts the link off.
template <class P, class Reply, class T, class Rep, class Period>
io::task<result<Reply>> request(link& l, const T& msg, std::chrono::duration<Rep, Period> timeout) {
    auto answer = co_await ipc::exchange(l.channel, l.requests, msg, timeout);
    if (!answer) co_return answer.error();
    auto* raw = std::get_if<wire::raw_message>(&*answer);
    if (!raw) co_return make_error_code(errc::unexpected_type);
    auto decoded = wire::decode_raw<P>(*raw);
    if (!decoded) {
        const auto why = decoded.error().code;
        l.channel.abort(why, std::move(decoded.error().path));
        co_return why;
    }
    if (auto* reply = std::get_if<Reply>(&*decoded)) co_return std::move(*reply);
    co_return make_error_code(errc::unexpected_type);
}

// What both ends offer their users alike: send, request, reply, in the user's protocol P.
// Each takes its message as T&&, to refuse the temporaries GCC 12 would destroy twice
// (io::refuse_awaited_temporary).
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
        return detail::request<P, Reply>(link_, msg, timeout);
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
    explicit link_end(link& l) noexcept : link_(l) {}
    ~link_end() = default;

    link& link_;
};

}  // namespace cluster::detail
