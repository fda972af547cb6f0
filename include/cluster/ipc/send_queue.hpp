// cluster::ipc::send_queue: a channel's sending half — frames queued all through a turn of
// the loop and written in one sendmsg with their fds, large payloads in sealed memfds,
// backpressure and flush. Only queue() depends on what is sent: the rest is not a template.
#pragma once

#include <cluster/config.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/scm_rights.hpp>
#include <cluster/ipc/channel_options.hpp>
#include <cluster/ipc/memfd.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/buffer.hpp>
#include <cluster/wire/codec.hpp>
#include <cluster/wire/frame.hpp>
#include <cluster/wire/shared_bytes.hpp>

namespace cluster::ipc {

namespace detail {

// A coroutine suspended on an Owner (a send queue, a channel). It unregisters if destroyed
// while waiting, and the owner forgets it (leaving it suspended) if the owner goes first.
// Nothing is set until it suspends: most awaits complete at once (a message buffered, room
// in the queue), and then building and destroying it costs a store and a test.
template <class Owner>
struct waiter {
    Owner* owner = nullptr;  // while suspended, until woken
    std::coroutine_handle<> h;

    waiter() noexcept = default;
    // Movable until suspended (compilers may move an awaiter into the frame), never after.
    waiter(waiter&&) noexcept {}
    waiter& operator=(waiter&&) = delete;
    ~waiter() {
        if (owner) owner->forget(this);
    }
    void suspend_on(Owner& o, std::coroutine_handle<> awaiting) noexcept {
        owner = &o;
        h = awaiting;
    }
};

// A descriptor a queued frame carries: a dup the queue owns, closed once the batch has
// gone, or the sender's own, lent: the sender keeps it open until the peer has answered,
// which it cannot do before the frame is written (see send_queue::lend).
class queued_fd {
public:
    static queued_fd owned(unique_fd fd) noexcept { return queued_fd(fd.release(), true); }
    static queued_fd lent(int fd) noexcept { return queued_fd(fd, false); }
    queued_fd(queued_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)), owned_(other.owned_) {}
    queued_fd& operator=(queued_fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
            owned_ = other.owned_;
        }
        return *this;
    }
    ~queued_fd() { reset(); }

    [[nodiscard]] bool is_owned() const noexcept { return owned_; }
    friend int raw_fd(const queued_fd& q) noexcept { return q.fd_; }

private:
    queued_fd(int fd, bool owned) noexcept : fd_(fd), owned_(owned) {}
    void reset() noexcept {
        if (owned_ && fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    int fd_;
    bool owned_;
};

}  // namespace detail

class send_queue {
    using waiter = detail::waiter<send_queue>;

public:
    // Sends on `fd`, which outlives the queue; counts into `stats`, which does too.
    send_queue(int fd, const channel_options& options, channel_stats& stats)
        : fd_(fd), options_(options), stats_(stats), ctx_(&io::io_context::current_or_throw()) {}
    send_queue(const send_queue&) = delete;
    send_queue& operator=(const send_queue&) = delete;
    // The kernel may still hold pointers into this queue: take them back first.
    CLUSTER_DECL ~send_queue();

    // Queues msg (and dups of any fds it holds) for the batch that leaves at the end of this
    // turn. A small message without fds, the common case, is framed straight into the batch:
    // no fds to collect or dup, nothing to undo (a frame that cannot be encoded throws and
    // leaves the batch as it was). Forced inline, down to the encoder: as calls, they cost a
    // small message's send about a quarter of its instructions.
    template <class T>
    [[gnu::always_inline]] std::error_code queue(const T& msg, std::uint32_t tag, std::uint16_t flags) {
        if (write_error_) return write_error_;
        if constexpr (!wire::carries_fds<T>) {
            const std::size_t size = wire::encoded_size(msg);
            if (size <= options_.memfd_threshold) {
                wire::detail::encode_plain_frame_to(filling_.bytes, msg, size, tag, flags);
                return queued(size);
            }
        }
        return queue_with_fds_or_memfd(msg, tag, flags, fd_use::dup);
    }

    // queue() for a message whose fds the caller keeps open until the peer has answered it
    // (the primary's handoffs): they are sent as they are, not dup'd and closed again, which
    // spares two system calls per fd. The answer proves the frame written; if the peer goes
    // first, the socket is shut down before the caller closes them, so no write can still
    // name them.
    template <class T>
        requires wire::carries_fds<T>
    std::error_code lend(const T& msg, std::uint32_t tag, std::uint16_t flags) {
        if (write_error_) return write_error_;
        return queue_with_fds_or_memfd(msg, tag, flags, fd_use::lend);
    }

    // queue() for a small message the peer need not have at once (a worker's answers about
    // its connections): it leaves with the next batch that leaves for another reason — any
    // other frame, flush(), release() — and schedules none of its own until it is the
    // `most`-th held in a row. Several then cost the peer one read and one wake-up, not one
    // each; and nothing queued after one can overtake it.
    template <class T>
        requires(!wire::carries_fds<T>)
    std::error_code hold(const T& msg, std::uint32_t tag, std::uint16_t flags, std::size_t most) {
        if (filling_.size() == 0) held_ = 0;
        const std::size_t size = wire::encoded_size(msg);
        if (++held_ >= most || size > options_.memfd_threshold) return queue(msg, tag, flags);
        if (write_error_) return write_error_;
        wire::detail::encode_plain_frame_to(filling_.bytes, msg, size, tag, flags);
        count_frame(size);
        return no_error();
    }

    // What hold() queued leaves now, at the end of this turn.
    void release() {
        if (filling_.size() > 0) schedule_flush();
    }

    // Completes at once unless more than the high-water mark is queued, then once the socket
    // has drained below it; gives `queued`'s error, or the queue's.
    struct send_awaiter : waiter {
        send_queue& q;  // the waiter's owner is forgotten once it is woken; this is not
        std::error_code queued;
        send_awaiter(send_queue& queue, std::error_code e) noexcept : q(queue), queued(e) {}
        bool await_ready() const noexcept { return queued || q.write_error_ || !q.full(); }
        void await_suspend(std::coroutine_handle<> awaiting) {
            this->suspend_on(q, awaiting);
            q.blocked_senders_.push_back(this);
        }
        result<void> await_resume() const noexcept {
            if (queued) return queued;
            return q.result_so_far();
        }
    };

    // Completes once everything queued has been written to the socket.
    struct flush_awaiter : waiter {
        send_queue& q;
        explicit flush_awaiter(send_queue& queue) noexcept : q(queue) {}
        bool await_ready() const noexcept { return q.write_error_ || q.queued_bytes() == 0; }
        void await_suspend(std::coroutine_handle<> awaiting) {
            this->suspend_on(q, awaiting);
            q.flush_waiters_.push_back(this);
            q.release();  // what was held must not wait for company
        }
        result<void> await_resume() const noexcept { return q.result_so_far(); }
    };

    [[nodiscard]] send_awaiter wait_for_room(std::error_code queued) noexcept { return {*this, queued}; }
    [[nodiscard]] flush_awaiter flush() noexcept { return flush_awaiter{*this}; }

    [[nodiscard]] std::size_t queued_bytes() const noexcept { return sending_.size() - sent_ + filling_.size(); }
    // More than the high-water mark is queued: senders wait.
    [[nodiscard]] bool full() const noexcept { return queued_bytes() >= options_.high_water_mark; }
    [[nodiscard]] const std::error_code& error() const noexcept { return write_error_; }

    // Drops what is queued; every send from now on fails with `ec`.
    CLUSTER_DECL void fail(std::error_code ec);

    // Takes back the queue's ops, resuming nobody: before its socket closes.
    CLUSTER_DECL void cancel_writes();

    // Resumes everyone waiting: after fail(), their sends fail.
    CLUSTER_DECL void wake_all();

    // The fds that wait to be sent and are this queue's to close (a lent one is its sender's):
    // a process forked meanwhile must close them, or it would hold, say, a client's
    // connection open.
    CLUSTER_DECL void owned_queued_fds(std::vector<int>& fds) const;

    // In a process forked from this queue's owner: what is queued is the parent's to send,
    // and is dropped here (its fds closed), with the ops and waiters, which are the parent's
    // too, forgotten without a touch of the loop. Every send from now on fails with `ec`.
    CLUSTER_DECL void drop_in_forked_child(std::error_code ec) noexcept;

    CLUSTER_DECL void forget(waiter* w) noexcept;

private:
    // Frames queued for the socket: bytes, the fds they carry, and where each frame with
    // fds starts and ends (it goes in a sendmsg of its own, with its fds).
    struct fd_mark {
        std::size_t offset;
        std::size_t end;
        std::size_t count;
    };
    // Large heap-backed shared_bytes are not copied into `bytes`: they are listed in
    // `gather` (holding a reference) and sent from where they are with more iovecs.
    // Offsets in marks count the whole stream, gathered runs included.
    struct batch {
        wire::buffer bytes;
        std::vector<detail::queued_fd> fds;
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

    CLUSTER_DECL result<void> result_so_far() const noexcept;

    // Counts a frame of `payload` bytes in; the batch leaves at the end of this loop turn.
    // Only the first frame of a turn has a flush to schedule: the rest skip the call. Inline,
    // as queue() is: compiled once, or left to the compiler, it was a call per message.
    [[gnu::always_inline]] std::error_code queued(std::size_t payload) {
        count_frame(payload);
        if (!flush_scheduled_ && write_idle_) schedule_flush();
        return no_error();
    }
    [[gnu::always_inline]] void count_frame(std::size_t payload) noexcept {
        ++stats_.frames_sent;
        stats_.bytes_sent += wire::frame_header_size + payload;
    }

    // std::error_code() calls std::system_category() in libstdc++, a call per message.
    static std::error_code no_error() noexcept { return make_error_code(errc{}); }

    // How a queued frame holds the fds its message refers to.
    enum class fd_use { dup, lend };

    template <class T>
    std::error_code queue_with_fds_or_memfd(const T& msg, std::uint32_t tag, std::uint16_t flags, fd_use use) {
        const std::size_t start = filling_.bytes.size();
        const std::size_t stream_start = filling_.size();
        const std::size_t fds_before = filling_.fds.size();
        const std::size_t runs_before = filling_.gather.runs.size();
        std::error_code ec;
        if constexpr (wire::carries_fds<T>) {
            // It may hold shared_bytes: those sent by reference (gathered) or by fd are
            // not copied, so what decides between inline and memfd is what would be.
            wire::fd_list fds;
            wire::detail::encode_frame_to(filling_.bytes, msg, wire::encoded_size(msg), tag, flags, &filling_.gather,
                                          &fds);
            ec = take_fds(fds, use);
            if (!ec && filling_.bytes.size() - start > wire::frame_header_size + options_.memfd_threshold) {
                undo(start, fds_before, runs_before);
                ec = queue_in_memfd(msg, tag, flags, use);
            }
        } else {
            ec = queue_in_memfd(msg, tag, flags, use);  // queue() took it inline if it was small enough
        }
        if (ec) {
            undo(start, fds_before, runs_before);
            return ec;
        }
        if (filling_.fds.size() > fds_before)
            filling_.marks.push_back({stream_start, filling_.size(), filling_.fds.size() - fds_before});
        return queued(wire::encoded_size(msg));
    }

    CLUSTER_DECL void undo(std::size_t bytes, std::size_t fds, std::size_t runs);

    template <class T>
    std::error_code queue_in_memfd(const T& msg, std::uint32_t tag, std::uint16_t flags, fd_use use) {
        const std::size_t size = wire::encoded_size(msg);
        if (size > options_.max_frame_size) return make_error_code(errc::frame_too_large);
        wire::fd_list fds;
        auto memfd = make_sealed_memfd(size, [&](std::byte* p) { wire::encode_to(p, msg, &fds); });
        if (!memfd) return memfd.error();
        if (auto ec = take_fds(fds, use)) return ec;
        filling_.fds.push_back(detail::queued_fd::owned(std::move(*memfd)));
        ++stats_.memfd_frames;
        queue_memfd_header(wire::frame_header{static_cast<std::uint32_t>(size), wire::type_id<T>, wire::fingerprint<T>,
                                              static_cast<std::uint16_t>(fds.size() + 1),
                                              static_cast<std::uint16_t>(flags | wire::frame_flags::memfd), tag});
        return {};
    }

    CLUSTER_DECL void queue_memfd_header(const wire::frame_header& h);

    // The message's fds are borrowed and it may be gone before the batch is written: each is
    // dup'd, unless the caller lends it.
    CLUSTER_DECL std::error_code take_fds(const wire::fd_list& fds, fd_use use);

    CLUSTER_DECL void schedule_flush();

    CLUSTER_DECL void on_flush(int, bool resume);

    // Writes what is queued: first straight to the socket, without blocking, which costs
    // one syscall and no completion to wait for (a small batch usually fits); what the
    // socket will not take now goes to io_uring, which waits for room.
    CLUSTER_DECL void write_more();

    // The common batch, plain bytes with nothing left of an earlier one, is sent from
    // where it was encoded: no swap of the two batches (four containers each) and no
    // msghdr to prepare unless the socket takes less than all of it.
    CLUSTER_DECL void write_plain_batch();

    CLUSTER_DECL void write_queued();

    // `sending` is what the kernel may be reading, `filling` what came since.
    CLUSTER_DECL void start_sending_filled();

    // One sendmsg: the rest of `sending` up to the next frame with fds, or that frame alone
    // with its fds. Each frame's fds then arrive as a batch of their own, with nothing
    // else, and a receiver knows them for that frame's: it can close, and refuse, any a
    // peer sends beyond what its frames announce (see frame_reader::add_fds).
    CLUSTER_DECL void prepare_write();

    // send() when there is one run of bytes and no fds: the kernel then has no msghdr and
    // iovec array to copy in, which is a good part of a small write's cost.
    CLUSTER_DECL ssize_t send_prepared() noexcept;

    CLUSTER_DECL void submit_write();

    // Accounts for n bytes of the prepared sendmsg; true when all of it went out. Even a
    // short write carried all of its fds: they ride on the first byte.
    CLUSTER_DECL bool written(std::size_t n);

    [[nodiscard]] CLUSTER_DECL std::size_t prepared_bytes() const noexcept;

    // iovecs for the stream bytes [sent, end) of `sending`: buffer pieces with the gathered
    // runs between them (at most 64; a short write just continues later).
    CLUSTER_DECL void gather_iovs(std::size_t end);

    CLUSTER_DECL void on_written(int res, bool resume);

    CLUSTER_DECL void wake_senders();

    static CLUSTER_DECL void wake(std::vector<waiter*>& list);

    int fd_;
    const channel_options& options_;
    channel_stats& stats_;
    io::io_context* ctx_;

    batch filling_, sending_;
    std::size_t sent_ = 0;        // bytes of `sending_` written
    std::size_t marks_sent_ = 0;  // marks of `sending_` whose fds went out
    std::size_t fds_sent_ = 0;    // and the fds themselves
    bool write_idle_ = true;
    bool flush_scheduled_ = false;
    std::size_t held_ = 0;  // frames hold() queued in a row into the batch filling now
    std::error_code write_error_;
    std::vector<waiter*> blocked_senders_, flush_waiters_;
    msghdr send_msg_{};
    iovec send_iov_{};
    std::vector<iovec> send_iovs_;  // when `sending_` has gathered runs
    std::vector<std::byte> send_control_;
    std::size_t pending_fds_ = 0;  // the fds of the write in flight, which carries one mark's

    // Declared after the functions they name.
    io::detail::member_completion<send_queue, &send_queue::on_flush> flush_hook_{this};
    io::detail::member_completion<send_queue, &send_queue::on_written> write_hook_{this};
};

}  // namespace cluster::ipc

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/ipc/impl/send_queue.ipp>
#endif
