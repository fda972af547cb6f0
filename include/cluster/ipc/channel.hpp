// cluster::ipc::channel<P>: one end of a socketpair carrying protocol P's messages. Sends
// go through a send_queue (batched, one sendmsg per loop turn); receives decode in place.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/io/awaited_temporary.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/scm_rights.hpp>
#include <cluster/io/task.hpp>
#include <cluster/ipc/channel_options.hpp>
#include <cluster/ipc/frame_reader.hpp>
#include <cluster/ipc/send_queue.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/frame.hpp>
#include <cluster/wire/protocol.hpp>

namespace cluster::ipc {

// A message with what the frame said about it: request/response correlation.
template <class P>
struct envelope {
    typename P::variant value;
    std::uint32_t tag = 0;
    std::uint16_t flags = 0;
};

// A socketpair for a channel's two ends (close-on-exec).
inline result<std::pair<unique_fd, unique_fd>> make_socket_pair() {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return errno_code(errno);
    return std::pair{unique_fd(sv[0]), unique_fd(sv[1])};
}

template <class P>
class channel {
    struct state;
    using waiter = detail::waiter<state>;

public:
    using protocol = P;
    using variant = typename P::variant;

    explicit channel(unique_fd socket, channel_options options = {})
        : s_(std::make_unique<state>(std::move(socket), options)) {}

    // Queues msg (and dups of any fds it holds) for the next batch. Completes at once
    // unless more than the high-water mark is queued, then once the socket has drained
    // below it. An error means the peer is gone or the channel is closed. Inline down to
    // the encoder, as send_queue::queue() is. (See io::refuse_awaited_temporary for T&&.)
    template <class T>
        requires wire::message_of<std::remove_cvref_t<T>, P>
    [[nodiscard]] [[gnu::always_inline]] auto send(T&& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        io::refuse_awaited_temporary<T>();
        return s_->sender.wait_for_room(s_->sender.queue(msg, tag, flags));
    }

    // The same without waiting: queues msg unless the high-water mark is already passed
    // (then resource_unavailable_try_again, and nothing is queued).
    template <wire::message_of<P> T>
    result<void> try_send(const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        if (auto ec = s_->sender.error()) return ec;
        if (s_->sender.full()) return std::make_error_code(std::errc::resource_unavailable_try_again);
        if (auto ec = s_->sender.queue(msg, tag, flags)) return ec;
        return {};
    }

    // Queues msg whatever is queued already, and says at once whether it could: for a
    // process's own small messages, which must not wait for room (a handoff, an answer).
    template <wire::message_of<P> T>
    std::error_code queue(const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        return s_->sender.queue(msg, tag, flags);
    }

    // queue() for a message whose fds the caller keeps open until the peer has answered it:
    // sent as they are, not dup'd (see send_queue::lend).
    template <wire::message_of<P> T>
        requires wire::carries_fds<T>
    std::error_code lend(const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        return s_->sender.lend(msg, tag, flags);
    }

    // queue() for a small message that may wait to leave with the next batch, up to `most`
    // of them (see send_queue::hold); release() sends what waits at the end of this turn.
    template <wire::message_of<P> T>
    std::error_code hold(const T& msg, std::size_t most) {
        return s_->sender.hold(msg, 0, 0, most);
    }
    void release() { s_->sender.release(); }

    // What send() waits for after queueing, for a message queue() took: the result of
    // `queued`, once the socket has drained below the high-water mark if it had not.
    [[nodiscard]] auto wait_for_room(std::error_code queued) { return s_->sender.wait_for_room(queued); }

    // The next message, or nothing once the channel has closed (see close_reason()).
    [[nodiscard]] auto receive() { return receive_awaiter<false>{*s_}; }
    [[nodiscard]] auto receive_envelope() { return receive_awaiter<true>{*s_}; }

    // The next message, which must be a T: anything else closes the channel (unexpected_type).
    // Not receive<T>(): a worker's receive<T>() takes the next T and leaves the rest queued.
    template <wire::message_of<P> T>
    io::task<std::optional<T>> expect() {
        auto m = co_await receive();
        if (!m) co_return std::nullopt;
        if (auto* t = std::get_if<T>(&*m)) co_return std::move(*t);
        s_->close_with(make_error_code(errc::unexpected_type),
                       "expected " + std::string(P::template name<T>) + ", received another type");
        co_return std::nullopt;
    }

    // Waits until everything queued has been written to the socket.
    [[nodiscard]] auto flush() { return s_->sender.flush(); }

    // Flushes, then tells the peer no more is coming: its receive() ends cleanly.
    io::task<result<void>> shutdown() {
        auto flushed = co_await flush();
        if (!flushed) co_return flushed;
        if (::shutdown(s_->fd.get(), SHUT_WR) != 0) co_return errno_code(errno);
        co_return result<void>{};
    }

    // Closes the socket now. What is queued is dropped; waiting senders get channel_closed
    // and a waiting receive() gets nothing, as does every later send and receive. The
    // descriptor is released at once: the kernel's ops on it are cancelled first.
    void close() { s_->close_now(); }

    // Cuts off a peer that broke the protocol in a message that decoded: it learns at once,
    // nothing more it sends is read, and close_reason() says why.
    void abort(std::error_code why, std::string detail) { s_->close_with(why, std::move(detail)); }

    [[nodiscard]] bool is_open() const noexcept { return !s_->read_closed; }
    // Empty after a clean end of stream; otherwise why the channel closed.
    [[nodiscard]] std::error_code close_reason() const noexcept { return s_->reason; }
    [[nodiscard]] std::string close_message() const {
        if (!s_->reason) return "closed";
        return s_->reason_detail.empty() ? s_->reason.message() : s_->reason_detail + ": " + s_->reason.message();
    }
    [[nodiscard]] int native_handle() const noexcept { return s_->fd.get(); }

    // The fds waiting in the send queue that a process forked meanwhile must close: see send_queue.
    void owned_queued_fds(std::vector<int>& fds) const { s_->sender.owned_queued_fds(fds); }
    // In a process forked from this channel's owner without exec, which is not that owner: its
    // copy of the socket is closed, so it can never speak for the owner nor send what the owner
    // had queued, which is dropped. Sends then fail with errc::forked_child and receive() ends.
    // Neither the socket itself nor the loop, which are the parent's, is touched.
    void close_in_forked_child() noexcept { s_->close_in_forked_child(); }
    [[nodiscard]] std::size_t queued_bytes() const noexcept { return s_->sender.queued_bytes(); }
    [[nodiscard]] const channel_stats& stats() const noexcept { return s_->stats; }
    // fds the kernel closed instead of giving them to us, as we were at our descriptor limit:
    // the messages they came with arrived without them.
    [[nodiscard]] std::uint64_t fds_lost() const noexcept { return s_->reader.fds_lost(); }

private:
    struct state {
        unique_fd fd;
        channel_options options;
        io::io_context* ctx;
        channel_stats stats;
        send_queue sender;

        // Receiving.
        frame_reader reader;
        bool recv_idle = true;
        bool read_closed = false;
        // Complete, waiting for a receiver to decode it: a plain frame where it lies in the
        // reader's buffer, or any other as the reader's frame_view.
        const std::byte* plain = nullptr;
        const frame_view* frame = nullptr;
        waiter* receiver = nullptr;
        msghdr recv_msg{};
        iovec recv_iov{};
        alignas(cmsghdr) std::byte recv_control[CMSG_SPACE(sizeof(int) * wire::max_frame_fds)];

        std::error_code reason;
        std::string reason_detail;

        state(unique_fd socket, const channel_options& o)
            : fd(std::move(socket)), options(o), ctx(&io::io_context::current_or_throw()),
              sender(fd.get(), options, stats), reader(o.max_frame_size, o.read_chunk) {}
        state(const state&) = delete;
        state& operator=(const state&) = delete;
        // The kernel may still hold pointers into this state: take them back first (the
        // send queue takes back its own, before the socket closes).
        ~state() {
            if (receiver) receiver->owner = nullptr;
            if (!recv_idle) ctx->cancel_and_wait(&recv_hook, recv_idle);
        }

        void forget(waiter* w) noexcept {
            if (receiver == w) receiver = nullptr;
        }

        // Whether a receive can complete without waiting: a whole frame is buffered (it is
        // decoded by take_message(), straight into the value handed out), or the channel
        // has closed. Each receive takes the next frame of those one read brought, and only
        // once none is left does a receive go to the kernel.
        // The receive path, down to the codec of the message, is forced inline (always_inline
        // here, in frame_reader and in wire's frame decoder): left to itself the compiler
        // made ten calls of it per message, and they cost more than the decoding did.
        // A plain frame, nearly every one, is taken without building next()'s result, whose
        // error half made this too big to inline.
        [[gnu::always_inline]] bool take_ready() {
            if (frame || read_closed) return true;
            plain = reader.plain_frame();
            if (plain != nullptr || (reader.may_hold_more() && take_next())) return true;
            return reader.holds_stray_fds() && refuse_stray_fds();
        }
        [[gnu::cold]] bool refuse_stray_fds() {
            auto e = reader.stray_fds_error();
            close_with(e.code, std::move(e.detail));
            return true;
        }
        bool take_next() {
            auto next = reader.next();
            if (!next) {
                close_with(next.error().code, next.error().detail);
                return true;
            }
            frame = *next;
            return frame != nullptr;
        }

        // The message in the frame take_ready() found; nothing once the channel has closed,
        // or if this frame does not check out (which closes it).
        [[gnu::always_inline]] std::optional<variant> take_message() {
            if (plain) return decode_plain();
            if (!frame) return std::nullopt;
            return decode_frame();
        }

        // The plain frame's message, decoded where it lies. As decode_frame(), apart so
        // that `out` is its only return value.
        [[gnu::always_inline]] std::optional<variant> decode_plain() {
            auto out = wire::decode_plain_frame_in_place<P>(
                plain, [this](wire::decode_error&& e) { close_with(e.code, std::move(e.path)); });
            const std::size_t bytes = wire::frame_header_size + wire::header_view(plain).payload_size();
            stats.bytes_received += bytes;
            plain = nullptr;
            reader.skip(bytes);
            if (out) ++stats.frames_received;
            return out;
        }

        // Apart from take_message() so that `out` is its only return value: then it is
        // built in the caller's optional (NRVO), not moved there.
        [[gnu::always_inline]] std::optional<variant> decode_frame() {
            std::optional<wire::decode_error> error;
            auto out = wire::decode_frame_in_place<P>(frame->header, frame->payload, frame->fds, frame->owner, error);
            stats.bytes_received += wire::frame_header_size + frame->header.payload_size;
            frame = nullptr;
            reader.consume();
            if (error)
                close_with(error->code, std::move(error->path));
            else
                ++stats.frames_received;
            return out;
        }

        std::optional<envelope<P>> take_envelope() {
            wire::frame_header header;
            if (plain)
                header = wire::header_view(plain).whole();
            else if (frame)
                header = frame->header;
            else
                return std::nullopt;
            auto m = take_message();
            if (!m) return std::nullopt;
            return envelope<P>{std::move(*m), header.tag, header.flags};
        }

        void start_receive() {
            if (!recv_idle || read_closed) return;
            auto space = reader.writable();
            recv_iov = {space.data(), space.size()};
            recv_msg = {};
            recv_msg.msg_iov = &recv_iov;
            recv_msg.msg_iovlen = 1;
            recv_msg.msg_control = recv_control;
            recv_msg.msg_controllen = sizeof recv_control;
            io_uring_prep_recvmsg(ctx->sqe(&recv_hook), fd.get(), &recv_msg, MSG_CMSG_CLOEXEC);
            recv_idle = false;
        }

        void on_received(int res, bool resume) {
            recv_idle = true;
            std::vector<unique_fd> fds = io::take_fds(recv_msg);
            if (res < 0) {
                close_with(errno_code(-res), "receive failed");
            } else if (res == 0) {
                if (reader.partial_bytes() > 0)
                    close_with(make_error_code(errc::eof),
                               "peer closed mid-frame, " + std::to_string(reader.partial_bytes()) + " bytes in");
                else
                    read_closed = true;
            } else {
                // MSG_CTRUNC: this process is at its descriptor limit, and the kernel closed
                // the fds it could not install. The frame they came with arrives without
                // them, and the link goes on.
                reader.commit(static_cast<std::size_t>(res));
                reader.add_fds(fds, (recv_msg.msg_flags & MSG_CTRUNC) != 0);
            }
            if (!resume || !receiver) return;
            if (take_ready())
                wake_receiver();
            else
                start_receive();
        }

        void wake_receiver() {
            if (waiter* w = std::exchange(receiver, nullptr)) {
                w->owner = nullptr;
                w->h.resume();
            }
        }

        // A peer that broke the protocol is cut off both ways: it learns at once, and
        // nothing more it sends is read.
        void close_with(std::error_code ec, std::string detail) {
            if (read_closed) return;
            read_closed = true;
            reason = ec;
            reason_detail = std::move(detail);
            reader.drop_fds();
            ::shutdown(fd.get(), SHUT_RDWR);
            sender.fail(make_error_code(errc::channel_closed));
        }

        void close_in_forked_child() noexcept {
            read_closed = true;
            reason = make_error_code(errc::forked_child);
            reason_detail.clear();
            plain = nullptr;
            frame = nullptr;
            receiver = nullptr;
            recv_idle = true;
            reader.drop_fds();
            sender.drop_in_forked_child(reason);
            fd.reset();
        }

        void close_now() {
            if (!fd) return;
            close_with(make_error_code(errc::channel_closed), "closed");
            sender.fail(make_error_code(errc::channel_closed));
            sender.cancel_writes();
            if (!recv_idle) ctx->cancel_and_wait(&recv_hook, recv_idle);
            plain = nullptr;
            frame = nullptr;
            fd.reset();
            sender.wake_all();
            wake_receiver();
        }

        // Declared after the function it names.
        io::detail::member_completion<state, &state::on_received> recv_hook{this};
    };

    template <bool WithEnvelope>
    struct receive_awaiter : waiter {
        state& st;  // the waiter's owner is forgotten once it is woken; this is not
        explicit receive_awaiter(state& s) noexcept : st(s) {}
        [[gnu::always_inline]] bool await_ready() { return st.take_ready(); }
        void await_suspend(std::coroutine_handle<> awaiting) {
            this->suspend_on(st, awaiting);
            st.receiver = this;
            st.start_receive();
        }
        // Inline like await_ready(): the decoding happens here, and as a call it spilled
        // and reloaded what the coroutine had in registers.
        [[gnu::always_inline]] auto await_resume() {
            if constexpr (WithEnvelope)
                return st.take_envelope();
            else
                return st.take_message();
        }
    };

    std::unique_ptr<state> s_;
};

}  // namespace cluster::ipc
