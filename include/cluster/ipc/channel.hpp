// cluster::ipc::channel<P>: one end of a socketpair carrying protocol P's messages.
// Sends batch into one sendmsg per loop turn; receives decode in place; fds ride along.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/scm_rights.hpp>
#include <cluster/io/task.hpp>
#include <cluster/ipc/frame_reader.hpp>
#include <cluster/ipc/memfd.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/frame.hpp>
#include <cluster/wire/protocol.hpp>

namespace cluster::ipc {

struct channel_options {
    std::size_t max_frame_size = 64u << 20;    // larger payloads are refused, and close the channel
    std::size_t high_water_mark = 256u << 10;  // queued bytes past which send() waits for the socket
    std::size_t memfd_threshold = 1u << 20;    // larger payloads travel in a sealed memfd
    std::size_t read_chunk = 64u << 10;        // bytes asked of each receive
};

// A message with what the frame said about it: request/response correlation.
template <class P>
struct envelope {
    typename P::variant value;
    std::uint32_t tag = 0;
    std::uint16_t flags = 0;
};

// What a channel has done so far: how well sends coalesce, and how much went by memfd.
struct channel_stats {
    std::uint64_t frames_sent = 0;
    std::uint64_t writes = 0;        // sendmsg calls that carried them
    std::uint64_t memfd_frames = 0;  // frames whose payload travelled in a sealed memfd
    std::uint64_t frames_received = 0;
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

public:
    using protocol = P;
    using variant = typename P::variant;

    explicit channel(unique_fd socket, channel_options options = {})
        : s_(std::make_unique<state>(std::move(socket), options)) {}

    // Queues msg (and dups of any fds it holds) for the next batch. Completes at once
    // unless more than the high-water mark is queued, then once the socket has drained
    // below it. An error means the peer is gone or the channel is closed.
    // Forced inline, down to the encoder (queue(), encode_plain_frame_to()): as calls, they
    // cost a small message's send about a quarter of its instructions.
    template <class T>
        requires wire::message_of<T, P>
    [[nodiscard]] [[gnu::always_inline]] auto send(const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        return send_awaiter{*s_, s_->queue(msg, tag, flags)};
    }

    // The same without waiting: queues msg unless the high-water mark is already passed
    // (then resource_unavailable_try_again, and nothing is queued).
    template <class T>
        requires wire::message_of<T, P>
    result<void> try_send(const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
        if (s_->write_error) return s_->write_error;
        if (s_->queued_bytes() >= s_->options.high_water_mark)
            return std::make_error_code(std::errc::resource_unavailable_try_again);
        if (auto ec = s_->queue(msg, tag, flags)) return ec;
        return {};
    }

    // The next message, or nothing once the channel has closed (see close_reason()).
    [[nodiscard]] auto receive() { return receive_awaiter<false>{*s_}; }
    [[nodiscard]] auto receive_envelope() { return receive_awaiter<true>{*s_}; }

    // The next message, which must be a T: anything else closes the channel.
    template <class T>
        requires wire::message_of<T, P>
    io::task<std::optional<T>> receive() {
        auto m = co_await receive();
        if (!m) co_return std::nullopt;
        if (auto* t = std::get_if<T>(&*m)) co_return std::move(*t);
        s_->close_with(make_error_code(errc::unexpected_type),
                       "expected " + std::string(P::template name<T>) + ", received another type");
        co_return std::nullopt;
    }

    // Waits until everything queued has been written to the socket.
    [[nodiscard]] auto flush() { return flush_awaiter{*s_}; }

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

    [[nodiscard]] bool is_open() const noexcept { return !s_->read_closed; }
    // Empty after a clean end of stream; otherwise why the channel closed.
    [[nodiscard]] std::error_code close_reason() const noexcept { return s_->reason; }
    [[nodiscard]] std::string close_message() const {
        if (!s_->reason) return "closed";
        return s_->reason_detail.empty() ? s_->reason.message() : s_->reason_detail + ": " + s_->reason.message();
    }
    [[nodiscard]] int native_handle() const noexcept { return s_->fd.get(); }

    // In a process forked while fds wait in the send queue: they are the parent's to send,
    // and a child that kept them would hold, say, a client's connection open.
    void close_queued_fds_in_forked_child() const noexcept {
        for (const auto* b : {&s_->filling, &s_->sending})
            for (const auto& fd : b->fds) ::close(fd.get());
    }
    [[nodiscard]] std::size_t queued_bytes() const noexcept { return s_->queued_bytes(); }
    [[nodiscard]] const channel_stats& stats() const noexcept { return s_->stats; }

private:
    // Frames queued for the socket: bytes, the fds they carry, and where each frame with
    // fds starts (fds go in the sendmsg whose bytes begin at or before their frame).
    struct fd_mark {
        std::size_t offset;
        std::size_t count;
    };
    // Large heap-backed shared_bytes are not copied into `bytes`: they are listed in
    // `gather` (holding a reference) and sent from where they are with more iovecs.
    // Offsets in marks count the whole stream, gathered runs included.
    struct batch {
        wire::buffer bytes;
        std::vector<unique_fd> fds;
        std::vector<fd_mark> marks;
        wire::gather_list gather;
        [[nodiscard]] std::size_t size() const noexcept { return bytes.size() + gather.total; }
        void clear() noexcept {
            bytes.clear();
            fds.clear();
            marks.clear();
            gather.clear();
        }
    };

    // A coroutine suspended on the channel. It unregisters if destroyed while waiting,
    // and the channel forgets it (leaving it suspended) if the channel goes first.
    struct waiter {
        state* s = nullptr;
        std::coroutine_handle<> h;
    };

    template <void (*Fn)(state&, int res, bool resume)>
    struct hook : io::detail::completion {
        state* owner;
        explicit hook(state* s) noexcept : owner(s) {
            complete = [](io::detail::completion* c, int res, unsigned, bool resume) noexcept {
                Fn(*static_cast<hook*>(c)->owner, res, resume);
            };
        }
    };

    struct state {
        unique_fd fd;
        channel_options options;
        io::io_context* ctx;

        // Sending: `sending` is what the kernel may be reading, `filling` what came since.
        batch filling, sending;
        std::size_t sent = 0;        // bytes of `sending` written
        std::size_t marks_sent = 0;  // marks of `sending` whose fds went out
        bool write_idle = true;
        bool flush_scheduled = false;
        std::error_code write_error;
        std::vector<waiter*> blocked_senders, flush_waiters;
        msghdr send_msg{};
        iovec send_iov{};
        std::vector<iovec> send_iovs;  // when `sending` has gathered runs
        std::vector<std::byte> send_control;
        std::size_t pending_marks = 0;  // marks_sent once the write in flight succeeds

        // Receiving.
        frame_reader reader;
        bool recv_idle = true;
        bool read_closed = false;
        const frame_view* frame = nullptr;  // complete, waiting for a receiver to decode it
        waiter* receiver = nullptr;
        msghdr recv_msg{};
        iovec recv_iov{};
        alignas(cmsghdr) std::byte recv_control[CMSG_SPACE(sizeof(int) * wire::max_frame_fds)];

        std::error_code reason;
        std::string reason_detail;
        channel_stats stats;

        state(unique_fd socket, const channel_options& o)
            : fd(std::move(socket)), options(o), ctx(&io_context::current_or_throw()),
              reader(o.max_frame_size, o.read_chunk) {}
        state(const state&) = delete;
        state& operator=(const state&) = delete;
        // The kernel may still hold pointers into this state: take them back first.
        ~state() {
            for (waiter* w : blocked_senders) w->s = nullptr;
            for (waiter* w : flush_waiters) w->s = nullptr;
            if (receiver) receiver->s = nullptr;
            if (flush_scheduled) ctx->cancel_defer(&flush_hook);
            if (!write_idle) ctx->cancel_and_wait(&write_hook, write_idle);
            if (!recv_idle) ctx->cancel_and_wait(&recv_hook, recv_idle);
        }

        [[nodiscard]] std::size_t queued_bytes() const noexcept { return sending.size() - sent + filling.size(); }

        // ---- sending ----

        // A small message without fds, the common case, is framed straight into the batch:
        // no fds to collect or dup, nothing to undo (a frame that cannot be encoded throws
        // and leaves the batch as it was).
        template <class T>
        [[gnu::always_inline]] std::error_code queue(const T& msg, std::uint32_t tag, std::uint16_t flags) {
            if (write_error) return write_error;
            if constexpr (!wire::carries_fds<T>) {
                const std::size_t size = wire::encoded_size(msg);
                if (size <= options.memfd_threshold) {
                    wire::detail::encode_plain_frame_to<P>(filling.bytes, msg, size, tag, flags);
                    return queued();
                }
            }
            return queue_with_fds_or_memfd(msg, tag, flags);
        }

        // Counts a frame in; the batch leaves at the end of this loop turn. Only the first
        // frame of a turn has a flush to schedule: the rest skip the call.
        std::error_code queued() {
            ++stats.frames_sent;
            if (!flush_scheduled && write_idle) schedule_flush();
            return no_error();
        }

        // std::error_code() calls std::system_category() in libstdc++, a call per message.
        static std::error_code no_error() noexcept { return make_error_code(errc{}); }

        template <class T>
        std::error_code queue_with_fds_or_memfd(const T& msg, std::uint32_t tag, std::uint16_t flags) {
            const std::size_t start = filling.bytes.size();
            const std::size_t stream_start = filling.size();
            const std::size_t fds_before = filling.fds.size();
            const std::size_t runs_before = filling.gather.runs.size();
            auto undo = [&] {
                filling.bytes.truncate(start);
                filling.fds.resize(fds_before);
                while (filling.gather.runs.size() > runs_before) {
                    filling.gather.total -= filling.gather.runs.back().bytes.size();
                    filling.gather.runs.pop_back();
                }
            };
            std::error_code ec;
            if constexpr (wire::carries_fds<T>) {
                // It may hold shared_bytes: those sent by reference (gathered) or by fd are
                // not copied, so what decides between inline and memfd is what would be.
                ec = queue_inline(msg, tag, flags);
                if (!ec && filling.bytes.size() - start > wire::frame_header_size + options.memfd_threshold) {
                    undo();
                    ec = queue_in_memfd(msg, tag, flags);
                }
            } else {
                ec = queue_in_memfd(msg, tag, flags);  // queue() took it inline if it was small enough
            }
            if (ec) {
                undo();
                return ec;
            }
            if (filling.fds.size() > fds_before)
                filling.marks.push_back({stream_start, filling.fds.size() - fds_before});
            return queued();
        }

        template <class T>
        std::error_code queue_inline(const T& msg, std::uint32_t tag, std::uint16_t flags) {
            return adopt_dups(wire::encode_frame<P>(filling.bytes, msg, tag, flags, &filling.gather));
        }

        template <class T>
        std::error_code queue_in_memfd(const T& msg, std::uint32_t tag, std::uint16_t flags) {
            const std::size_t size = wire::encoded_size(msg);
            if (size > options.max_frame_size) return make_error_code(errc::frame_too_large);
            wire::fd_list fds;
            auto memfd = make_sealed_memfd(size, [&](std::byte* p) { wire::encode_to(p, msg, &fds); });
            if (!memfd) return memfd.error();
            if (auto ec = adopt_dups(fds)) return ec;
            filling.fds.push_back(std::move(*memfd));
            ++stats.memfd_frames;
            const wire::frame_header h{static_cast<std::uint32_t>(size),
                                       P::template id<T>,
                                       P::template fingerprint<T>,
                                       static_cast<std::uint16_t>(fds.size() + 1),
                                       static_cast<std::uint16_t>(flags | wire::frame_flags::memfd),
                                       tag};
            wire::encode_header(h, std::span<std::byte, wire::frame_header_size>(
                                       filling.bytes.extend(wire::frame_header_size), wire::frame_header_size));
            return {};
        }

        // The message's fds are borrowed and it may be gone before the batch is written.
        std::error_code adopt_dups(const wire::fd_list& fds) {
            for (int raw : fds) {
                unique_fd dup(::fcntl(raw, F_DUPFD_CLOEXEC, 0));
                if (!dup) return errno_code(errno);
                filling.fds.push_back(std::move(dup));
            }
            return {};
        }

        void schedule_flush() {
            if (flush_scheduled || !write_idle) return;
            ctx->defer(&flush_hook);
            flush_scheduled = true;
        }

        static void on_flush(state& s, int, bool resume) {
            s.flush_scheduled = false;
            if (!resume) return;
            s.write_more();
            s.wake_senders();
        }

        // Writes what is queued: first straight to the socket, without blocking, which
        // costs one syscall and no completion to wait for (a small batch usually fits);
        // what the socket will not take now goes to io_uring, which waits for room.
        void write_more() {
            if (write_idle && !write_error && sent == sending.size() && filling.fds.empty() &&
                filling.gather.runs.empty())
                return write_plain_batch();
            write_queued();
        }

        // The common batch, plain bytes with nothing left of an earlier one, is sent from
        // where it was encoded: no swap of the two batches (four containers each) and no
        // msghdr to prepare unless the socket takes less than all of it.
        void write_plain_batch() {
            const std::size_t size = filling.bytes.size();
            if (size == 0) return;
            const ssize_t n = ::send(fd.get(), filling.bytes.data(), size, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n == static_cast<ssize_t>(size)) {
                ++stats.writes;
                filling.clear();
                return;
            }
            const int err = errno;
            std::swap(sending, filling);
            filling.clear();
            sent = 0;
            marks_sent = 0;
            prepare_write();
            if (n < 0 && err != EAGAIN && err != EWOULDBLOCK) return fail_writes(errno_code(err));
            if (n >= 0) {
                ++stats.writes;
                (void)written(static_cast<std::size_t>(n));  // a short write: the rest is prepared
            }
            submit_write();
        }

        void write_queued() {
            while (write_idle && !write_error) {
                if (sent == sending.size()) {
                    if (filling.size() == 0) return;
                    std::swap(sending, filling);
                    filling.clear();
                    sent = 0;
                    marks_sent = 0;
                }
                prepare_write();
                const ssize_t n = send_prepared();
                if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return fail_writes(errno_code(errno));
                if (n >= 0) ++stats.writes;
                if (n < 0 || !written(static_cast<std::size_t>(n))) return submit_write();
            }
        }

        // One sendmsg: the rest of `sending`, cut short before any frame whose fds would
        // not fit into this message's SCM_RIGHTS.
        void prepare_write() {
            std::size_t end = sending.size();
            std::size_t fd_begin = 0, fd_count = 0, m = marks_sent;
            for (std::size_t i = 0; i < marks_sent; ++i) fd_begin += sending.marks[i].count;
            for (; m < sending.marks.size(); ++m) {
                if (fd_count + sending.marks[m].count > wire::max_frame_fds) {
                    end = sending.marks[m].offset;
                    break;
                }
                fd_count += sending.marks[m].count;
            }
            send_msg = {};
            if (sending.gather.runs.empty()) {
                send_iov = {sending.bytes.data() + sent, end - sent};
                send_msg.msg_iov = &send_iov;
                send_msg.msg_iovlen = 1;
            } else {
                gather_iovs(end);
                send_msg.msg_iov = send_iovs.data();
                send_msg.msg_iovlen = send_iovs.size();
            }
            io::attach_fds(send_msg, send_control, std::span<const unique_fd>(sending.fds).subspan(fd_begin, fd_count));
            pending_marks = m;
        }

        // send() when there is one run of bytes and no fds: the kernel then has no msghdr
        // and iovec array to copy in, which is a good part of a small write's cost.
        ssize_t send_prepared() noexcept {
            constexpr int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
            if (send_msg.msg_iovlen == 1 && send_msg.msg_controllen == 0)
                return ::send(fd.get(), send_msg.msg_iov[0].iov_base, send_msg.msg_iov[0].iov_len, flags);
            return ::sendmsg(fd.get(), &send_msg, flags);
        }

        void submit_write() {
            io_uring_prep_sendmsg(ctx->sqe(&write_hook), fd.get(), &send_msg, MSG_NOSIGNAL);
            write_idle = false;
            ++stats.writes;
        }

        // Accounts for n bytes of the prepared sendmsg; true when all of it went out.
        // Even a short write carried all of its fds: they ride on the first byte.
        bool written(std::size_t n) {
            const std::size_t wanted = prepared_bytes();
            sent += n;
            if (n > 0) marks_sent = pending_marks;
            if (sent == sending.size()) {
                sending.clear();
                sent = 0;
                marks_sent = 0;
            }
            if (n == wanted) return true;
            prepare_write();  // the rest, from where the socket stopped
            return false;
        }

        [[nodiscard]] std::size_t prepared_bytes() const noexcept {
            std::size_t n = 0;
            for (std::size_t i = 0; i < send_msg.msg_iovlen; ++i) n += send_msg.msg_iov[i].iov_len;
            return n;
        }

        // iovecs for the stream bytes [sent, end) of `sending`: buffer pieces with the
        // gathered runs between them (at most 64; a short write just continues later).
        void gather_iovs(std::size_t end) {
            send_iovs.clear();
            std::size_t at = 0, buffered = 0;  // stream offset of bytes.data() + buffered
            auto piece = [&](const std::byte* p, std::size_t n) {
                const std::size_t from = std::max(sent, at), to = std::min(end, at + n);
                if (from < to && send_iovs.size() < 64)
                    send_iovs.push_back({const_cast<std::byte*>(p) + (from - at), to - from});
                at += n;
            };
            for (const auto& run : sending.gather.runs) {
                if (at >= end) break;
                piece(sending.bytes.data() + buffered, run.at - buffered);
                buffered = run.at;
                piece(run.bytes.data(), run.bytes.size());
            }
            if (at < end) piece(sending.bytes.data() + buffered, sending.bytes.size() - buffered);
        }

        static void on_written(state& s, int res, bool resume) {
            s.write_idle = true;
            if (res < 0) {
                s.fail_writes(errno_code(-res));
            } else {
                (void)s.written(static_cast<std::size_t>(res));
                if (resume) s.write_more();
            }
            if (resume) s.wake_senders();
        }

        void fail_writes(std::error_code ec) {
            if (!write_error) write_error = ec;
            sending.clear();
            filling.clear();
            sent = 0;
            marks_sent = 0;
        }

        void wake_senders() {
            if (write_error || queued_bytes() < options.high_water_mark) wake(blocked_senders);
            if (write_error || queued_bytes() == 0) wake(flush_waiters);
        }

        static void wake(std::vector<waiter*>& list) {
            for (waiter* w : std::exchange(list, {})) {
                w->s = nullptr;
                w->h.resume();
            }
        }

        void forget(waiter* w) noexcept {
            std::erase(blocked_senders, w);
            std::erase(flush_waiters, w);
            if (receiver == w) receiver = nullptr;
        }

        // ---- receiving ----

        // Whether a receive can complete without waiting: a whole frame is buffered (it is
        // decoded by take_message(), straight into the value handed out), or the channel
        // has closed.
        // The receive path, down to the codec of the message, is forced inline (always_inline
        // here, in frame_reader and in wire's frame decoder): left to itself the compiler
        // made ten calls of it per message, and they cost more than the decoding did.
        // The common frame is taken without building next()'s result, whose error half
        // made this too big to inline.
        [[gnu::always_inline]] bool take_ready() {
            if (frame || read_closed) return true;
            frame = reader.next_small();
            return frame != nullptr || (reader.may_hold_more() && take_next());
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
            if (!frame) return std::nullopt;
            return decode_frame();
        }

        // Apart from take_message() so that `out` is its only return value: then it is
        // built in the caller's optional (NRVO), not moved there.
        [[gnu::always_inline]] std::optional<variant> decode_frame() {
            std::optional<wire::decode_error> error;
            auto out = wire::decode_frame_in_place<P>(frame->header, frame->payload, frame->fds, frame->owner, error);
            frame = nullptr;
            reader.consume();
            if (error)
                close_with(error->code, std::move(error->path));
            else
                ++stats.frames_received;
            return out;
        }

        std::optional<envelope<P>> take_envelope() {
            if (!frame) return std::nullopt;
            const wire::frame_header header = frame->header;
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

        static void on_received(state& s, int res, bool resume) {
            s.recv_idle = true;
            std::vector<unique_fd> fds = io::take_fds(s.recv_msg);
            if (res < 0) {
                s.close_with(errno_code(-res), "receive failed");
            } else if (res == 0) {
                if (s.reader.partial_bytes() > 0)
                    s.close_with(make_error_code(errc::eof),
                                 "peer closed mid-frame, " + std::to_string(s.reader.partial_bytes()) + " bytes in");
                else
                    s.read_closed = true;
            } else if (s.recv_msg.msg_flags & MSG_CTRUNC) {
                s.close_with(make_error_code(errc::missing_fd), "more fds than one message may carry");
            } else {
                s.reader.commit(static_cast<std::size_t>(res));
                s.reader.add_fds(fds);
            }
            if (!resume || !s.receiver) return;
            if (s.take_ready()) {
                waiter* w = std::exchange(s.receiver, nullptr);
                w->s = nullptr;
                w->h.resume();
            } else {
                s.start_receive();
            }
        }

        // A peer that broke the protocol is cut off both ways: it learns at once, and
        // nothing more it sends is read.
        void close_with(std::error_code ec, std::string detail) {
            if (read_closed) return;
            read_closed = true;
            reason = ec;
            reason_detail = std::move(detail);
            ::shutdown(fd.get(), SHUT_RDWR);
            fail_writes(make_error_code(errc::channel_closed));
        }

        void close_now() {
            if (!fd) return;
            close_with(make_error_code(errc::channel_closed), "closed");
            fail_writes(make_error_code(errc::channel_closed));
            if (flush_scheduled) ctx->cancel_defer(&flush_hook);
            flush_scheduled = false;
            if (!write_idle) ctx->cancel_and_wait(&write_hook, write_idle);
            if (!recv_idle) ctx->cancel_and_wait(&recv_hook, recv_idle);
            frame = nullptr;
            fd.reset();
            wake(blocked_senders);
            wake(flush_waiters);
            if (waiter* w = std::exchange(receiver, nullptr)) {
                w->s = nullptr;
                w->h.resume();
            }
        }

        // Declared after the functions they name, which must be visible here.
        hook<&state::on_flush> flush_hook{this};
        hook<&state::on_written> write_hook{this};
        hook<&state::on_received> recv_hook{this};
    };

    // What every awaiter shares: registration while suspended, and leaving cleanly.
    struct suspending : waiter {
        explicit suspending(state& st) noexcept { this->s = &st; }
        // Movable until suspended (compilers may move an awaiter into the frame), never after.
        suspending(suspending&& other) noexcept : waiter{other.s, {}} {}
        suspending& operator=(suspending&&) = delete;
        ~suspending() {
            if (this->s && this->h) this->s->forget(this);
        }
    };

    struct send_awaiter : suspending {
        std::error_code error;
        state& st;
        send_awaiter(state& s, std::error_code e) noexcept : suspending(s), error(e), st(s) {}
        bool await_ready() const noexcept {
            return error || st.write_error || st.queued_bytes() < st.options.high_water_mark;
        }
        void await_suspend(std::coroutine_handle<> h) {
            this->h = h;
            st.blocked_senders.push_back(this);
        }
        result<void> await_resume() const noexcept {
            if (error) return error;
            if (st.write_error) return st.write_error;
            return {};
        }
    };

    struct flush_awaiter : suspending {
        state& st;
        explicit flush_awaiter(state& s) noexcept : suspending(s), st(s) {}
        bool await_ready() const noexcept { return st.write_error || st.queued_bytes() == 0; }
        void await_suspend(std::coroutine_handle<> h) {
            this->h = h;
            st.flush_waiters.push_back(this);
        }
        result<void> await_resume() const noexcept {
            if (st.write_error) return st.write_error;
            return {};
        }
    };

    template <bool WithEnvelope>
    struct receive_awaiter : suspending {
        state& st;
        explicit receive_awaiter(state& s) noexcept : suspending(s), st(s) {}
        [[gnu::always_inline]] bool await_ready() { return st.take_ready(); }
        void await_suspend(std::coroutine_handle<> h) {
            this->h = h;
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
