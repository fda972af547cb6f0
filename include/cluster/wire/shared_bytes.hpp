// cluster::wire::shared_bytes: an immutable, reference-counted, contiguous run of bytes, and its codec.
// Built in a sealed memfd it crosses to another process as one fd: no copy at all.
#pragma once

// Wire format (see codec.hpp):
//   u32 fd index, then u64 size         a sealed memfd holding the bytes from offset 0
//   u32 0xffffffff, u32 n, then n bytes  inline (a sender may gather them by reference)

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/error.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/codec.hpp>

namespace cluster::wire {

namespace detail {

inline constexpr std::size_t huge_page = std::size_t{2} << 20;

// The shared part of every shared_bytes: a count of the values that refer to it, and
// what to do when the last one goes.
struct bytes_block {
    std::atomic<std::size_t> refs{1};
    void (*release)(bytes_block*) noexcept = nullptr;
    int fd = -1;  // a sealed memfd holding exactly the value's bytes, or -1

    void retain() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
    void drop() noexcept {
        if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) release(this);
    }
};

// Small values: the bytes follow the block in one allocation.
struct heap_block : bytes_block {
    static heap_block* make(std::size_t n) {
        void* p = ::operator new(sizeof(heap_block) + n);
        auto* b = new (p) heap_block;
        b->release = [](bytes_block* self) noexcept {
            static_cast<heap_block*>(self)->~heap_block();
            ::operator delete(static_cast<void*>(self));
        };
        return b;
    }
    std::byte* bytes() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
};

// Anonymous memory for large buffers: starts on a 2 MiB boundary and asks for huge pages,
// so filling it takes one page fault per 2 MiB rather than per 4 KiB (where THP is on).
inline std::byte* map_big(std::size_t length) {
    const std::size_t over = length + huge_page;
    void* p = ::mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(p);
    const auto aligned = (start + huge_page - 1) & ~(huge_page - 1);
    if (aligned > start) ::munmap(p, aligned - start);
    if (const std::size_t tail = start + over - (aligned + length); tail > 0)
        ::munmap(reinterpret_cast<void*>(aligned + length), tail);
    ::madvise(reinterpret_cast<void*>(aligned), length, MADV_HUGEPAGE);
    return reinterpret_cast<std::byte*>(aligned);
}

inline std::size_t page_round(std::size_t n) noexcept {
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return (n + page - 1) / page * page;
}

class recycler;

// A mapping: anonymous (big heap values, receive buffers) or of a sealed memfd.
struct mapped_block : bytes_block {
    std::byte* base = nullptr;
    std::size_t length = 0;
    recycler* home = nullptr;  // where an anonymous receive buffer goes back to, if anywhere

    static void destroy(mapped_block* b) noexcept {
        if (b->length != 0) ::munmap(b->base, b->length);
        if (b->fd >= 0) ::close(b->fd);
        delete b;
    }
    static void on_release(bytes_block* self) noexcept;

    static mapped_block* anonymous(std::size_t n) {
        auto* b = new mapped_block;
        b->release = &on_release;
        b->length = page_round(n);
        try {
            b->base = map_big(b->length);
        } catch (...) {
            delete b;
            throw;
        }
        return b;
    }
};

// Keeps one large receive buffer for the next large frame, so its pages stay faulted in
// (no zeroing, no page faults). A parked buffer is MADV_FREE'd: the kernel may take its
// pages back under memory pressure; the frame_reader also drops it once a small frame
// comes next. Shared (atomically counted) by a frame_reader and the buffers it lent out,
// which may be released on any thread.
class recycler {
public:
    static recycler* make() { return new recycler; }
    void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            drop_parked();
            delete this;
        }
    }
    // A buffer of at least n bytes (and not much more), warm when one was parked.
    mapped_block* take(std::size_t n) {
        mapped_block* b = parked_.exchange(nullptr, std::memory_order_acq_rel);
        if (b && (b->length < n || b->length > 2 * n + huge_page)) {
            mapped_block::destroy(b);
            b = nullptr;
        }
        if (!b) b = mapped_block::anonymous(n);
        b->refs.store(1, std::memory_order_relaxed);
        b->home = this;
        retain();
        return b;
    }
    // Called for every small frame: a plain load, inline, first; the exchange (a locked
    // instruction) cost a tenth of a small message's receive, and the call a few percent.
    [[gnu::always_inline]] void drop_parked() noexcept {
        if (parked_.load(std::memory_order_relaxed) != nullptr) drop_parked_now();
    }
    void drop_parked_now() noexcept {
        if (mapped_block* b = parked_.exchange(nullptr, std::memory_order_acq_rel)) mapped_block::destroy(b);
    }
    void park(mapped_block* b) noexcept {
        ::madvise(b->base, b->length, MADV_FREE);
        b->home = nullptr;
        if (mapped_block* old = parked_.exchange(b, std::memory_order_acq_rel)) mapped_block::destroy(old);
        release();  // the reference b held
    }

private:
    recycler() = default;
    std::atomic<std::size_t> refs_{1};
    std::atomic<mapped_block*> parked_{nullptr};
};

inline void mapped_block::on_release(bytes_block* self) noexcept {
    auto* b = static_cast<mapped_block*>(self);
    if (b->home)
        b->home->park(b);
    else
        destroy(b);
}

// Values at least this large live in their own huge-page mapping rather than the heap.
inline constexpr std::size_t big_value = huge_page;

struct bytes_access;

}  // namespace detail

class shared_bytes {
public:
    class builder;

    shared_bytes() noexcept = default;
    // Copies bytes into a block of their own.
    explicit shared_bytes(std::span<const std::byte> bytes) : shared_bytes(copy(bytes)) {}
    explicit shared_bytes(std::string_view text) : shared_bytes(std::as_bytes(std::span(text))) {}

    shared_bytes(const shared_bytes& other) noexcept : b_(other.b_), data_(other.data_), size_(other.size_) {
        if (b_) b_->retain();
    }
    shared_bytes(shared_bytes&& other) noexcept
        : b_(std::exchange(other.b_, nullptr)), data_(std::exchange(other.data_, nullptr)),
          size_(std::exchange(other.size_, 0)) {}
    shared_bytes& operator=(shared_bytes other) noexcept {
        swap(other);
        return *this;
    }
    ~shared_bytes() {
        if (b_) b_->drop();
    }
    void swap(shared_bytes& other) noexcept {
        std::swap(b_, other.b_);
        std::swap(data_, other.data_);
        std::swap(size_, other.size_);
    }

    [[nodiscard]] const std::byte* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    operator std::span<const std::byte>() const noexcept { return bytes(); }
    [[nodiscard]] std::string_view as_string_view() const noexcept {
        return {reinterpret_cast<const char*>(data_), size_};
    }
    [[nodiscard]] const std::byte* begin() const noexcept { return data_; }
    [[nodiscard]] const std::byte* end() const noexcept { return data_ + size_; }
    const std::byte& operator[](std::size_t i) const noexcept { return data_[i]; }

    // The sealed memfd holding exactly these bytes (a value made by builder::freeze or
    // received by fd), or -1. Such a value is sent as its fd: no bytes are copied.
    [[nodiscard]] int memfd() const noexcept { return b_ ? b_->fd : -1; }
    [[nodiscard]] bool memfd_backed() const noexcept { return memfd() >= 0; }
    // How many values share these bytes (0 for an empty value that owns nothing).
    [[nodiscard]] std::size_t use_count() const noexcept { return b_ ? b_->refs.load(std::memory_order_relaxed) : 0; }

    friend bool operator==(const shared_bytes& a, const shared_bytes& b) noexcept {
        return a.size_ == b.size_ &&
               (a.data_ == b.data_ || a.size_ == 0 || std::memcmp(a.data_, b.data_, a.size_) == 0);
    }

private:
    friend struct detail::bytes_access;

    // Adopts one reference to b.
    shared_bytes(detail::bytes_block* b, const std::byte* data, std::size_t size) noexcept
        : b_(b), data_(data), size_(size) {}

    static shared_bytes copy(std::span<const std::byte> bytes) {
        if (bytes.empty()) return {};
        if (bytes.size() >= detail::big_value) {
            auto* b = detail::mapped_block::anonymous(bytes.size());
            std::memcpy(b->base, bytes.data(), bytes.size());
            return {b, b->base, bytes.size()};
        }
        auto* b = detail::heap_block::make(bytes.size());
        std::memcpy(b->bytes(), bytes.data(), bytes.size());
        return {b, b->bytes(), bytes.size()};
    }

    detail::bytes_block* b_ = nullptr;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

// Writes a value in place, straight into a memfd, then freezes it: the memfd is sealed
// (no writes, no resizing, no more seals) and mapped read-only, so the value can be sent
// as its fd and the receiver can map it with nothing to fear from the sender.
//     shared_bytes::builder b(n);  fill(b.data());  shared_bytes s = std::move(b).freeze();
// Failing to create the memfd (e.g. out of fds) throws std::system_error.
class shared_bytes::builder {
public:
    explicit builder(std::size_t size) : size_(size) {
        fd_ = unique_fd(::memfd_create("cluster-shared-bytes", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!fd_) fail("memfd_create");
        if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0) fail("ftruncate");
        if (size == 0) return;
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
        if (p == MAP_FAILED) fail("mmap");
        data_ = static_cast<std::byte*>(p);
        // Helps only where shmem THP is enabled (shmem_enabled advise/within_size); harmless elsewhere.
        if (size >= detail::huge_page) ::madvise(p, size, MADV_HUGEPAGE);
    }
    builder(builder&& other) noexcept
        : fd_(std::move(other.fd_)), data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    builder& operator=(builder&&) = delete;
    ~builder() { unmap(); }

    [[nodiscard]] std::byte* data() noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::span<std::byte> bytes() noexcept { return {data_, size_}; }

    [[nodiscard]] shared_bytes freeze() && {
        if (!fd_)
            throw std::system_error(std::make_error_code(std::errc::invalid_argument),
                                    "cluster::shared_bytes::builder: freeze() called twice");
        // F_SEAL_WRITE is refused while a writable shared mapping exists.
        unmap();
        if (::fcntl(fd_.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
            fail("sealing the memfd");
        auto* b = new detail::mapped_block;
        b->release = &detail::mapped_block::on_release;
        if (size_ != 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_.get(), 0);
            if (p == MAP_FAILED) {
                delete b;
                fail("mmap read-only");
            }
            b->base = static_cast<std::byte*>(p);
            b->length = size_;
        }
        b->fd = fd_.release();
        return {b, b->base, std::exchange(size_, 0)};
    }

private:
    [[noreturn]] static void fail(const char* what) {
        throw std::system_error(errno_code(errno), std::string("cluster::shared_bytes::builder: ") + what);
    }
    void unmap() noexcept {
        if (data_) ::munmap(data_, size_);
        data_ = nullptr;
    }

    unique_fd fd_;
    std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

namespace detail {

// What the codec and the frame reader need beyond the public interface.
struct bytes_access {
    // The part of owner's bytes given by part, sharing owner's block when that is worth it
    // (part is at least half of owner, so a small field never pins a large buffer); else a copy.
    static shared_bytes share_or_copy(const shared_bytes* owner, std::span<const std::byte> part) {
        if (part.empty()) return {};
        if (owner && owner->b_ && part.data() >= owner->data_ &&
            part.data() + part.size() <= owner->data_ + owner->size_ && part.size() * 2 >= owner->size_) {
            owner->b_->retain();
            return {owner->b_, part.data(), part.size()};
        }
        return shared_bytes::copy(part);
    }

    struct refusal {
        errc code{};
        const char* why = nullptr;
    };
    // Maps a received fd read-only as out, once it checks out; else why it does not.
    static refusal adopt_memfd(unique_fd& fd, std::uint64_t size, shared_bytes& out) {
        constexpr int required = F_SEAL_WRITE | F_SEAL_SHRINK;
        const int seals = ::fcntl(fd.get(), F_GET_SEALS);
        if (seals < 0) return {errc::invalid_value, "fd is not a sealable memfd"};
        if ((seals & required) != required) return {errc::invalid_value, "memfd not sealed against write and shrink"};
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) < size ||
            size > std::numeric_limits<std::size_t>::max() / 2)
            return {errc::truncated, "memfd smaller than its declared size"};
        auto* b = new mapped_block;
        b->release = &mapped_block::on_release;
        if (size != 0) {
            // Not populated: the bytes are faulted in (from the page cache) only if read.
            void* p = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ, MAP_SHARED, fd.get(), 0);
            if (p == MAP_FAILED) {
                delete b;
                return {errc::invalid_value, "memfd cannot be mapped"};
            }
            b->base = static_cast<std::byte*>(p);
            b->length = static_cast<std::size_t>(size);
        }
        b->fd = fd.release();
        out = shared_bytes(b, b->base, static_cast<std::size_t>(size));
        return {};
    }

    // A received memfd frame's read-only mapping, as a value the decoder may alias.
    static shared_bytes adopt_mapping(std::byte* base, std::size_t length) noexcept {
        auto* b = new (std::nothrow) mapped_block;
        if (!b) {
            ::munmap(base, length);
            return {};
        }
        b->release = &mapped_block::on_release;
        b->base = base;
        b->length = length;
        return {b, base, length};
    }

    // A large receive buffer, lent to a frame_reader by its recycler: writable until handed out.
    static std::pair<shared_bytes, std::byte*> lend(recycler& home, std::size_t size) {
        mapped_block* b = home.take(size);
        return {shared_bytes(b, b->base, size), b->base};
    }
};

}  // namespace detail

// The runs an encoder left out of its output: each belongs `at` bytes into the output
// (counted in what was written, not including earlier runs). Runs shorter than
// min_run are copied as usual.
struct gather_list {
    struct run {
        std::size_t at;
        shared_bytes bytes;
    };
    std::byte* base = nullptr;  // where the output starts
    std::size_t min_run = 64 * 1024;
    std::size_t total = 0;  // bytes of all runs
    std::vector<run> runs;

    void clear() noexcept {
        runs.clear();
        total = 0;
    }
};

template <>
struct codec<shared_bytes> {
    static constexpr std::size_t min_size = 2 * sizeof(std::uint32_t);
    static constexpr bool fixed = false;
    static constexpr bool has_fds = true;

    static std::size_t size(const shared_bytes& v) {
        if (v.memfd_backed()) return sizeof(std::uint32_t) + sizeof(std::uint64_t);
        return sizeof(std::uint32_t) + detail::length_prefix(v.size()) + v.size();
    }
    static void write(detail::writer& w, const shared_bytes& v) {
        if (v.memfd_backed()) {
            w.put_value(static_cast<std::uint32_t>(w.fds->size()));
            w.fds->push_back(v.memfd());
            w.put_value(static_cast<std::uint64_t>(v.size()));
            return;
        }
        w.put_value(detail::no_fd);
        w.put_value(static_cast<std::uint32_t>(v.size()));
        if (w.gather && v.size() >= w.gather->min_run) {
            w.gather->runs.push_back({static_cast<std::size_t>(w.pos - w.gather->base), v});
            w.gather->total += v.size();
            return;
        }
        w.put_run(v.data(), v.size());
    }
    static bool read(detail::reader& r, shared_bytes& v) {
        std::uint32_t index = 0;
        if (!r.take_value(index)) return false;
        if (index == detail::no_fd) {
            std::uint32_t n = 0;
            if (!r.take_count(n, 1)) return false;
            v = detail::bytes_access::share_or_copy(r.owner, {r.pos, n});
            r.pos += n;
            return true;
        }
        std::uint64_t size = 0;
        if (!r.take_value(size)) return false;
        if (index >= r.fds.size() || !r.fds[index].valid()) return r.fail(errc::missing_fd);
        // The reason goes after the path the unwinding builds: "blob.bytes (memfd not sealed ...)".
        if (auto refused = detail::bytes_access::adopt_memfd(r.fds[index], size, v); refused.why) {
            r.fail(refused.code);
            r.path = std::string(" (") + refused.why + ")";
            return false;
        }
        return true;
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("bytes");
    }
};

}  // namespace cluster::wire
