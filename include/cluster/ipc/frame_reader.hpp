// cluster::ipc::frame_reader: cuts a received byte stream (and the fds that came with it)
// into frames, without I/O of its own: the channel feeds it, and the fuzzer does too.
#pragma once

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
        : max_payload_(max_payload), chunk_(chunk), large_(16 * chunk), pool_(wire::detail::recycler::make()) {}
    frame_reader(const frame_reader&) = delete;
    frame_reader& operator=(const frame_reader&) = delete;
    ~frame_reader() {
        big_ = {};
        mapping_ = {};
        pool_->release();
    }

    // Where the next receive should put bytes: at least one chunk, or the rest of the
    // frame in progress when that is larger, so a frame of any size is read in place.
    [[nodiscard]] std::span<std::byte> writable() {
        if (big_data_) return {big_data_ + big_filled_, frame_.header.payload_size - big_filled_};
        std::size_t want = chunk_;
        if (has_header_ && !memfd_frame()) want = std::max(want, frame_bytes() - buffered());
        if (capacity_ - end_ < want) make_room(want);
        return {data_.get() + end_, capacity_ - end_};
    }
    void commit(std::size_t n) noexcept {
        if (big_data_)
            big_filled_ += n;
        else
            end_ += n;
    }
    // The fds one receive brought. The sender gives each frame that has fds a sendmsg of
    // its own, so they are exactly that frame's: the next one that announces fds claims
    // them. `truncated`: the kernel had more for us and closed them, as this process is
    // at its descriptor limit.
    void add_fds(std::vector<unique_fd>& fds, bool truncated) {
        if (fds.empty() && !truncated) return;
        batches_.push_back({fds.size(), truncated});
        for (auto& fd : fds) fds_.push_back(std::move(fd));
        fds.clear();
    }

    // Whether fds arrived that no frame can claim: called with no whole frame left to take,
    // when every fd received is claimed but those of the frame still arriving, if any.
    // A peer that sends fds beyond what its frames announce is cut off by this, so that
    // what it holds open in this process stays within one frame's worth.
    [[nodiscard]] bool holds_stray_fds() const noexcept {
        return !batches_.empty() && (batches_.size() > 1 || partial_bytes() == 0);
    }
    // The stream is over: the fds no frame has taken are closed now, not when the reader goes.
    void drop_fds() noexcept {
        fds_.clear();
        batches_.clear();
        if (!complete_) frame_fds_.clear();
    }
    // How many of the fds frames announced the kernel could not give us.
    [[nodiscard]] std::uint64_t fds_lost() const noexcept { return lost_; }
    [[nodiscard]] stream_error stray_fds_error() const {
        return {make_error_code(errc::stray_fd), std::to_string(fds_.size()) + " fds not announced by any frame"};
    }

    // The next complete frame (valid until consume()), nullptr if none has arrived yet,
    // or why the stream cannot go on. A pointer, not a copy: this runs once per message.
    [[gnu::always_inline]] [[nodiscard]] boost::system::result<const frame_view*, stream_error> next() {
        if (const frame_view* f = next_small()) return f;
        return next_in_full();
    }

    // next() as far as it can go with no result to build: the frame if one is complete
    // and small (no fds, no buffer of its own), else nullptr, and next() has the answer.
    [[gnu::always_inline]] [[nodiscard]] const frame_view* next_small() {
        return complete_ || take_small_frame() ? &frame_ : nullptr;
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
        if (begin_ != end_) return;
        begin_ = end_ = 0;
        // After a large frame the buffer goes back, rather than pinning its size forever.
        if (capacity_ > 16 * chunk_) {
            data_.reset();
            capacity_ = 0;
        }
    }

    // Whether next() may find what next_small() did not: not when not even a header is
    // buffered, the usual state between messages, which then costs no call.
    [[gnu::always_inline]] [[nodiscard]] bool may_hold_more() const noexcept {
        return has_header_ || buffered() >= wire::frame_header_size;
    }

    // Bytes of a frame that has started but not finished: what a peer that vanishes
    // leaves behind.
    [[nodiscard]] std::size_t partial_bytes() const noexcept {
        return buffered() + (big_data_ ? wire::frame_header_size + big_filled_ : 0);
    }

private:
    // The common case, kept small enough to inline: a whole frame already buffered, with
    // no fds and no buffer of its own. Anything else is left to next_in_full().
    [[gnu::always_inline]] bool take_small_frame() {
        if (has_header_ || buffered() < wire::frame_header_size) return false;
        // Straight into the frame handed out: a copy of a header assembled field by field
        // stalls on store forwarding, a measurable share of a small receive.
        std::memcpy(&frame_.header, data_.get() + begin_, wire::frame_header_size);
        const wire::frame_header& h = frame_.header;
        if (h.fd_count != 0 || h.payload_size >= large_ || h.payload_size > max_payload_ ||
            buffered() - wire::frame_header_size < h.payload_size || !wire::header_is_valid(h))
            return false;
        pool_->drop_parked();  // the next large frame may be far off: do not keep its buffer
        frame_.payload = {data_.get() + begin_ + wire::frame_header_size, h.payload_size};
        frame_.fds = {};
        frame_.owner = nullptr;
        has_header_ = complete_ = true;
        return true;
    }

    [[nodiscard]] boost::system::result<const frame_view*, stream_error> next_in_full() {
        if (!has_header_) {
            if (buffered() < wire::frame_header_size) return nothing_yet;
            std::memcpy(&frame_.header, data_.get() + begin_, wire::frame_header_size);
            if (!wire::header_is_valid(frame_.header) || frame_.header.payload_size > max_payload_)
                return header_error();
            has_header_ = true;
            if (!memfd_frame() && frame_.header.payload_size >= large_)
                start_large_frame();
            else
                pool_->drop_parked();
        }
        if (big_data_ ? big_filled_ < frame_.header.payload_size : buffered() < frame_bytes()) return nothing_yet;
        if (frame_.header.fd_count == 0 && !big_data_) {
            frame_.payload = {data_.get() + begin_ + wire::frame_header_size, frame_.header.payload_size};
            frame_.fds = {};
            frame_.owner = nullptr;
        } else if (auto failed = complete_with_fds_or_buffer()) {
            return std::move(*failed);
        }
        complete_ = true;
        return &frame_;
    }

    [[nodiscard]] bool memfd_frame() const noexcept { return frame_.header.flags & wire::frame_flags::memfd; }
    [[nodiscard]] std::size_t buffered() const noexcept { return end_ - begin_; }
    [[nodiscard]] std::size_t frame_bytes() const noexcept {
        return wire::frame_header_size + (memfd_frame() ? 0 : frame_.header.payload_size);
    }

    // The header (already parsed) leaves the chunk buffer; the payload bytes that came with
    // it move to the large buffer, where the rest is received in place.
    void start_large_frame() {
        const std::size_t size = frame_.header.payload_size;
        auto [owner, data] = wire::detail::bytes_access::lend(*pool_, size);
        big_ = std::move(owner);
        big_data_ = data;
        begin_ += wire::frame_header_size;
        big_filled_ = std::min<std::size_t>(buffered(), size);
        if (big_filled_) std::memcpy(big_data_, data_.get() + begin_, big_filled_);
        begin_ += big_filled_;
        if (begin_ == end_) begin_ = end_ = 0;
    }

    // Why the header just read does not check out. It stays unaccepted: asked again, next()
    // says the same.
    [[gnu::cold]] stream_error header_error() const {
        const wire::frame_header& h = frame_.header;
        if (!wire::header_is_valid(h)) return {make_error_code(errc::bad_frame), "frame header does not check out"};
        return {make_error_code(errc::frame_too_large),
                std::to_string(h.payload_size) + " byte payload, limit " + std::to_string(max_payload_)};
    }

    // The rest of a whole frame that has fds or a buffer of its own: its fds claimed from
    // those received, and its payload found (a memfd frame's is mapped).
    std::optional<stream_error> complete_with_fds_or_buffer() {
        const wire::frame_header& h = frame_.header;
        if (auto failed = claim_fds(h.fd_count)) return failed;
        frame_.fds = frame_fds_;
        frame_.owner = nullptr;
        if (big_data_) {
            frame_.payload = big_.bytes();
            frame_.owner = &big_;
        } else if (memfd_frame()) {
            auto mapped = map_memfd(frame_fds_.back(), h.payload_size);
            if (!mapped) return stream_error{mapped.error(), "payload memfd unusable"};
            frame_.payload = *mapped;
            frame_.owner = &mapping_;
            frame_.fds = frame_.fds.first(frame_.fds.size() - 1);
        } else {
            frame_.payload = {data_.get() + begin_ + wire::frame_header_size, h.payload_size};
        }
        return std::nullopt;
    }

    // The fds that came with this frame's sendmsg: exactly as many as it announces, or
    // fewer when the kernel had to drop some (they are left empty). fds travel with the
    // first bytes of the write that carried them, so they have always arrived by the
    // time the frame's last byte has.
    std::optional<stream_error> claim_fds(std::size_t announced) {
        frame_fds_.clear();
        if (announced == 0) return std::nullopt;
        if (batches_.empty())
            return stream_error{make_error_code(errc::missing_fd),
                                std::to_string(announced) + " fds announced, none arrived"};
        const fd_batch batch = batches_.front();
        batches_.pop_front();
        for (std::size_t i = 0; i < batch.count; ++i) {
            frame_fds_.push_back(std::move(fds_.front()));
            fds_.pop_front();
        }
        if (batch.count > announced)
            return stream_error{make_error_code(errc::stray_fd), std::to_string(announced) + " fds announced, " +
                                                                     std::to_string(batch.count) + " arrived"};
        if (batch.count < announced && !batch.truncated)
            return stream_error{make_error_code(errc::missing_fd), std::to_string(announced) + " fds announced, " +
                                                                       std::to_string(batch.count) + " arrived"};
        lost_ += announced - batch.count;
        while (frame_fds_.size() < announced) frame_fds_.emplace_back(wire::lost_fd);
        return std::nullopt;
    }

    static constexpr const frame_view* nothing_yet = nullptr;

    void make_room(std::size_t want) {
        const std::size_t live = buffered();
        if (begin_ > 0 && capacity_ - live >= want) {
            std::memmove(data_.get(), data_.get() + begin_, live);
        } else {
            const std::size_t capacity = std::max(live + want, capacity_ + capacity_ / 2);
            auto grown = std::make_unique_for_overwrite<std::byte[]>(capacity);
            if (live) std::memcpy(grown.get(), data_.get() + begin_, live);
            data_ = std::move(grown);
            capacity_ = capacity;
        }
        begin_ = 0;
        end_ = live;
    }

    // A payload in a memfd is trusted only once sealed against writes and shrinking:
    // the sender can then neither change it under the decoder nor make reads fault.
    result<std::span<const std::byte>> map_memfd(const unique_fd& fd, std::size_t size) {
        constexpr int required = F_SEAL_WRITE | F_SEAL_SHRINK;
        int seals = ::fcntl(fd.get(), F_GET_SEALS);
        if (seals < 0 || (seals & required) != required) return make_error_code(errc::bad_frame);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || static_cast<std::size_t>(st.st_size) < size)
            return make_error_code(errc::truncated);
        if (size == 0) return std::span<const std::byte>{};
        void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
        if (p == MAP_FAILED) return errno_code(errno);
        mapping_ = wire::detail::bytes_access::adopt_mapping(static_cast<std::byte*>(p), size);
        if (mapping_.empty()) return make_error_code(std::errc::not_enough_memory);
        return mapping_.bytes();
    }

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
    wire::detail::recycler* pool_;
    wire::shared_bytes big_;  // a large frame's payload buffer
    std::byte* big_data_ = nullptr;
    std::size_t big_filled_ = 0;
};

}  // namespace cluster::ipc
