// cluster::ipc::frame_reader's definitions but for its hot path: reading frames, their fds
// and large payloads. Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/ipc/frame_reader.hpp>

namespace cluster::ipc {

CLUSTER_DECL frame_reader::~frame_reader() {
    big_ = {};
    mapping_ = {};
    pool_->release();
}

CLUSTER_DECL std::span<std::byte> frame_reader::writable() {
    if (big_data_) return {big_data_ + big_filled_, frame_.header.payload_size - big_filled_};
    std::size_t want = chunk_;
    if (has_header_ && !memfd_frame()) want = std::max(want, frame_bytes() - buffered());
    if (capacity_ - end_ < want) make_room(want);
    return {data_.get() + end_, capacity_ - end_};
}

CLUSTER_DECL void frame_reader::commit(std::size_t n) noexcept {
    if (big_data_)
        big_filled_ += n;
    else
        end_ += n;
}

CLUSTER_DECL void frame_reader::add_fds(std::vector<unique_fd>& fds, bool truncated) {
    if (fds.empty() && !truncated) return;
    batches_.push_back({fds.size(), truncated});
    for (auto& fd : fds) fds_.push_back(std::move(fd));
    fds.clear();
}

CLUSTER_DECL bool frame_reader::holds_stray_fds() const noexcept {
    return !batches_.empty() && (batches_.size() > 1 || partial_bytes() == 0);
}

CLUSTER_DECL void frame_reader::drop_fds() noexcept {
    fds_.clear();
    batches_.clear();
    if (!complete_) frame_fds_.clear();
}

CLUSTER_DECL stream_error frame_reader::stray_fds_error() const {
    return {make_error_code(errc::stray_fd), std::to_string(fds_.size()) + " fds not announced by any frame"};
}

CLUSTER_DECL std::size_t frame_reader::partial_bytes() const noexcept {
    return buffered() + (big_data_ ? wire::frame_header_size + big_filled_ : 0);
}

CLUSTER_DECL boost::system::result<const frame_view*, stream_error> frame_reader::next() {
    if (complete_) return &frame_;
    if (!has_header_) {
        if (buffered() < wire::frame_header_size) return nothing_yet;
        std::memcpy(&frame_.header, data_.get() + begin_, wire::frame_header_size);
        if (!wire::header_is_valid(frame_.header) || frame_.header.payload_size > max_payload_) return header_error();
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

CLUSTER_DECL std::size_t frame_reader::frame_bytes() const noexcept {
    return wire::frame_header_size + (memfd_frame() ? 0 : frame_.header.payload_size);
}

CLUSTER_DECL void frame_reader::start_large_frame() {
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

CLUSTER_DECL stream_error frame_reader::header_error() const {
    const wire::frame_header& h = frame_.header;
    if (!wire::header_is_valid(h)) return {make_error_code(errc::bad_frame), "frame header does not check out"};
    return {make_error_code(errc::frame_too_large),
            std::to_string(h.payload_size) + " byte payload, limit " + std::to_string(max_payload_)};
}

CLUSTER_DECL std::optional<stream_error> frame_reader::complete_with_fds_or_buffer() {
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

CLUSTER_DECL std::optional<stream_error> frame_reader::claim_fds(std::size_t announced) {
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
        return stream_error{make_error_code(errc::stray_fd),
                            std::to_string(announced) + " fds announced, " + std::to_string(batch.count) + " arrived"};
    if (batch.count < announced && !batch.truncated)
        return stream_error{make_error_code(errc::missing_fd),
                            std::to_string(announced) + " fds announced, " + std::to_string(batch.count) + " arrived"};
    lost_ += announced - batch.count;
    while (frame_fds_.size() < announced) frame_fds_.emplace_back(wire::lost_fd);
    return std::nullopt;
}

CLUSTER_DECL void frame_reader::release_buffer() noexcept {
    data_.reset();
    capacity_ = 0;
}

CLUSTER_DECL void frame_reader::make_room(std::size_t want) {
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

CLUSTER_DECL result<std::span<const std::byte>> frame_reader::map_memfd(const unique_fd& fd, std::size_t size) {
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

}  // namespace cluster::ipc
