// cluster::ipc::frame_reader: cuts a received byte stream (and the fds that came with it)
// into frames, without I/O of its own: the channel feeds it, and the fuzzer does too.
#pragma once

#include <cluster/config.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/frame.hpp>
#include <cluster/wire/shared_bytes.hpp>

namespace cluster::ipc {

// One complete frame: its header, its payload (in the reader's buffer, or mapped from
// the sealed memfd that carried it) and the fds that belong to it. Valid until consume().
// A large payload sits in a buffer of its own, owner: a decoded shared_bytes may keep
// (share) it instead of copying out of it. An fd the kernel could not give this process
// (it is at its descriptor limit) is wire::lost_fd.
struct frame_view {
    wire::frame_header header;
    std::span<const std::byte> payload;
    std::span<unique_fd> fds;
    const wire::shared_bytes* owner = nullptr;
};

// What went wrong with the stream, with enough words to act on.
struct stream_error {
    std::error_code code;
    std::string detail;
};

// Payloads of at least 16 chunks (1 MiB by default) are received into a buffer of their
// own, mapped with huge pages; it is lent to the decoded message when a shared_bytes in
// it wants the bytes, else kept warm for the next large frame. The one kept is dropped as
// soon as a smaller frame comes, and is MADV_FREE'd while it waits: an idle channel pins
// no large buffer the kernel cannot take back.
class frame_reader {
public:
    explicit frame_reader(std::size_t max_payload, std::size_t chunk = 64 * 1024)
        : max_payload_(max_payload), chunk_(chunk), large_(16 * chunk),
          plain_limit_(max_payload < large_ ? max_payload + 1 : large_), pool_(wire::detail::recycler::make()) {}
    frame_reader(const frame_reader&) = delete;
    frame_reader& operator=(const frame_reader&) = delete;
    CLUSTER_DECL ~frame_reader();

    // Where the next receive should put bytes: at least one chunk, or the rest of the
    // frame in progress when that is larger, so a frame of any size is read in place.
    [[nodiscard]] CLUSTER_DECL std::span<std::byte> writable();
    CLUSTER_DECL void commit(std::size_t n) noexcept;
    // The fds one receive brought. The sender gives each frame that has fds a sendmsg of
    // its own, so they are exactly that frame's: the next one that announces fds claims
    // them. `truncated`: the kernel had more for us and closed them, as this process is
    // at its descriptor limit.
    CLUSTER_DECL void add_fds(std::vector<unique_fd>& fds, bool truncated);

    // Whether fds arrived that no frame can claim: called with no whole frame left to take,
    // when every fd received is claimed but those of the frame still arriving, if any.
    // A peer that sends fds beyond what its frames announce is cut off by this, so that
    // what it holds open in this process stays within one frame's worth.
    [[nodiscard]] CLUSTER_DECL bool holds_stray_fds() const noexcept;
    // The stream is over: the fds no frame has taken are closed now, not when the reader goes.
    CLUSTER_DECL void drop_fds() noexcept;
    // How many of the fds frames announced the kernel could not give us.
    [[nodiscard]] std::uint64_t fds_lost() const noexcept { return lost_; }
    [[nodiscard]] CLUSTER_DECL stream_error stray_fds_error() const;

    // The next complete frame (valid until consume()), nullptr if none has arrived yet,
    // or why the stream cannot go on. A pointer, not a copy: this runs once per message.
    [[nodiscard]] CLUSTER_DECL boost::system::result<const frame_view*, stream_error> next();

    // The next frame if it is whole and plain (no fds, no buffer of its own, a valid header):
    // its first byte, the header, with the payload right after it, for the caller to decode
    // where it lies and then skip(). nullptr otherwise, and next() has the answer. Nearly
    // every frame is plain: a batch of them is walked with a few loads and compares each,
    // no frame_view filled in and no state changed until skip().
    [[gnu::always_inline]] [[nodiscard]] const std::byte* plain_frame() const noexcept {
        if (has_header_ || buffered() < wire::frame_header_size) return nullptr;
        const std::byte* at = data_.get() + begin_;
        const wire::header_view h(at);
        const std::uint32_t size = h.payload_size();
        if (h.fd_count() != 0 || size >= plain_limit_ || buffered() - wire::frame_header_size < size ||
            (h.flags() != 0 && !wire::header_is_valid(h.whole())))
            return nullptr;
        return at;
    }

    // Drops the plain frame plain_frame() returned, of `bytes` bytes, header included.
    [[gnu::always_inline]] void skip(std::size_t bytes) noexcept {
        pool_->drop_parked();  // the next large frame may be far off: do not keep its buffer
        begin_ += bytes;
        if (begin_ == end_) emptied();
    }

    // Drops the frame next() returned; its fds not taken by the decoder are closed.
    [[gnu::always_inline]] void consume() noexcept {
        if (!complete_) return;
        complete_ = has_header_ = false;
        if (big_data_) {
            // Back to the recycler, unless a decoded value now shares it.
            big_ = {};
            big_data_ = nullptr;
            big_filled_ = 0;
        } else {
            begin_ += frame_bytes();
        }
        if (frame_.header.fd_count != 0) {
            frame_fds_.clear();
            mapping_ = {};
        }
        if (begin_ == end_) emptied();
    }

    // Whether next() may find what plain_frame() did not: not when not even a header is
    // buffered, the usual state between messages, which then costs no call.
    [[gnu::always_inline]] [[nodiscard]] bool may_hold_more() const noexcept {
        return has_header_ || buffered() >= wire::frame_header_size;
    }

    // Bytes of a frame that has started but not finished: what a peer that vanishes
    // leaves behind.
    [[nodiscard]] CLUSTER_DECL std::size_t partial_bytes() const noexcept;

private:
    // Every byte buffered has been taken: the next receive starts at the buffer's start, and
    // after a large frame the buffer goes back, rather than pinning its size forever.
    [[gnu::always_inline]] void emptied() noexcept {
        begin_ = end_ = 0;
        if (capacity_ > 16 * chunk_) release_buffer();
    }
    CLUSTER_DECL void release_buffer() noexcept;

    [[nodiscard]] bool memfd_frame() const noexcept { return frame_.header.flags & wire::frame_flags::memfd; }
    [[nodiscard]] std::size_t buffered() const noexcept { return end_ - begin_; }
    [[nodiscard]] CLUSTER_DECL std::size_t frame_bytes() const noexcept;

    // The header (already parsed) leaves the chunk buffer; the payload bytes that came with
    // it move to the large buffer, where the rest is received in place.
    CLUSTER_DECL void start_large_frame();

    // Why the header just read does not check out. It stays unaccepted: asked again, next()
    // says the same.
    [[gnu::cold]] CLUSTER_DECL stream_error header_error() const;

    // The rest of a whole frame that has fds or a buffer of its own: its fds claimed from
    // those received, and its payload found (a memfd frame's is mapped).
    CLUSTER_DECL std::optional<stream_error> complete_with_fds_or_buffer();

    // The fds that came with this frame's sendmsg: exactly as many as it announces, or
    // fewer when the kernel had to drop some (they are left empty). fds travel with the
    // first bytes of the write that carried them, so they have always arrived by the
    // time the frame's last byte has.
    CLUSTER_DECL std::optional<stream_error> claim_fds(std::size_t announced);

    static constexpr const frame_view* nothing_yet = nullptr;

    CLUSTER_DECL void make_room(std::size_t want);

    // A payload in a memfd is trusted only once sealed against writes and shrinking:
    // the sender can then neither change it under the decoder nor make reads fault.
    CLUSTER_DECL result<std::span<const std::byte>> map_memfd(const unique_fd& fd, std::size_t size);

    std::size_t max_payload_;
    std::size_t chunk_;
    std::unique_ptr<std::byte[]> data_;
    std::size_t capacity_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    struct fd_batch {
        std::size_t count;
        bool truncated;
    };
    std::deque<unique_fd> fds_;     // received and not claimed yet, oldest first
    std::deque<fd_batch> batches_;  // how fds_ arrived: one batch per frame that has fds
    std::vector<unique_fd> frame_fds_;
    std::uint64_t lost_ = 0;
    frame_view frame_;  // the header once has_header_, the rest once complete_
    bool has_header_ = false;
    bool complete_ = false;
    wire::shared_bytes mapping_;  // a memfd frame's payload, mapped
    std::size_t large_;
    std::size_t plain_limit_;  // plain frames' payloads are smaller: below large_ and max_payload_
    wire::detail::recycler* pool_;
    wire::shared_bytes big_;  // a large frame's payload buffer
    std::byte* big_data_ = nullptr;
    std::size_t big_filled_ = 0;
};

}  // namespace cluster::ipc

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/ipc/impl/frame_reader.ipp>
#endif
