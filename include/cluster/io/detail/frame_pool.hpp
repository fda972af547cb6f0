// cluster::io::detail::frame_pool: tasks' coroutine frames recycled per thread by size, so a
// task started on a hot path (a request's handler, a co_await of one that is ready) costs no
// trip to the heap once its loop is warm.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace cluster::io::detail {

// Not under AddressSanitizer: it must see each frame freed, to catch a use after that.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool recycle_frames = true;
#elif defined(__has_feature)
inline constexpr bool recycle_frames = !__has_feature(address_sanitizer);
#else
inline constexpr bool recycle_frames = true;
#endif

class frame_pool {
public:
    static constexpr std::size_t granule = 64;
    static constexpr std::size_t classes = 32;                      // frames up to 2 KiB are kept
    static constexpr std::size_t kept_bytes_per_class = 32 * 1024;  // at most 1 MiB a thread

    static void* allocate(std::size_t size) {
        const std::size_t c = class_of(size);
        if (recycle_frames && c < classes) {
            auto& mine = cache();
            if (auto* b = mine.heads[c]) {
                mine.heads[c] = b->next;
                --mine.counts[c];
                return b;
            }
            return ::operator new((c + 1) * granule);
        }
        return ::operator new(size);
    }

    static void deallocate(void* p, std::size_t size) noexcept {
        const std::size_t c = class_of(size);
        if (recycle_frames && c < classes) {
            auto& mine = cache();
            if (mine.counts[c] < kept_bytes_per_class / ((c + 1) * granule)) {
                mine.heads[c] = new (p) block{mine.heads[c]};
                ++mine.counts[c];
                return;
            }
        }
        ::operator delete(p);
    }

    // How many frames of `size`'s class this thread keeps for reuse now.
    static std::size_t kept(std::size_t size) noexcept {
        const std::size_t c = class_of(size);
        return recycle_frames && c < classes ? cache().counts[c] : 0;
    }

private:
    struct block {
        block* next;
    };

    // A thread's frames, freed with it. A frame freed on another thread than it was made on
    // (a task handed over) joins that thread's cache: it is only memory by then.
    struct thread_cache {
        std::array<block*, classes> heads{};
        std::array<std::uint16_t, classes> counts{};
        thread_cache() = default;
        thread_cache(const thread_cache&) = delete;
        thread_cache& operator=(const thread_cache&) = delete;
        ~thread_cache() {
            for (auto* head : heads)
                while (head) ::operator delete(std::exchange(head, head->next));
        }
    };

    static std::size_t class_of(std::size_t size) noexcept { return (size - 1) / granule; }

    static thread_cache& cache() noexcept {
        static thread_local thread_cache mine;
        return mine;
    }
};

}  // namespace cluster::io::detail
