// cluster::wire::buffer: a growable byte buffer that hands out uninitialised space.
// Encoders size a message exactly, extend once, then write with no bounds checks.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <utility>

namespace cluster::wire {

class buffer {
public:
    buffer() noexcept = default;
    explicit buffer(std::size_t capacity) { reserve(capacity); }
    buffer(buffer&& other) noexcept
        : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)),
          capacity_(std::exchange(other.capacity_, 0)) {}
    buffer& operator=(buffer&& other) noexcept {
        data_ = std::move(other.data_);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
        return *this;
    }
    buffer(const buffer&) = delete;
    buffer& operator=(const buffer&) = delete;

    [[nodiscard]] std::byte* data() noexcept { return data_.get(); }
    [[nodiscard]] const std::byte* data() const noexcept { return data_.get(); }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_.get(), size_}; }

    // Keeps the capacity: a channel reuses one buffer for every batch it sends.
    void clear() noexcept { size_ = 0; }
    // Drops everything after the first size bytes, e.g. a frame that failed half-written.
    void truncate(std::size_t size) noexcept { size_ = std::min(size, size_); }

    void reserve(std::size_t capacity) {
        if (capacity <= capacity_) return;
        // make_unique_for_overwrite: the bytes are about to be written, zeroing them is waste.
        auto grown = std::make_unique_for_overwrite<std::byte[]>(capacity);
        if (size_ != 0) std::memcpy(grown.get(), data_.get(), size_);
        data_ = std::move(grown);
        capacity_ = capacity;
    }

    // Appends n uninitialised bytes and returns where they start; the caller fills them.
    [[nodiscard]] std::byte* extend(std::size_t n) {
        if (capacity_ - size_ < n) grow(n);
        return data_.get() + std::exchange(size_, size_ + n);
    }

    void append(std::span<const std::byte> bytes) {
        if (!bytes.empty()) std::memcpy(extend(bytes.size()), bytes.data(), bytes.size());
    }

private:
    // Out of line, so that extend(), which a channel runs for every frame it queues, is small
    // enough to inline: g++ 12 left it as a call, with the growth it rarely needs inside.
    [[gnu::noinline]] void grow(std::size_t n) { reserve(std::max(size_ + n, capacity_ * 2)); }

    std::unique_ptr<std::byte[]> data_;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

}  // namespace cluster::wire
