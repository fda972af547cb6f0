// cluster::detail::box_pool: the memory of messages' boxes, kept per thread for reuse and handed
// back in batches from threads that free boxes to threads that make them, as a thread link's flow.
#pragma once

#include <pthread.h>

#include <array>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

#include <cluster/io/detail/frame_pool.hpp>

namespace cluster::detail {

// A message sent to a thread worker is boxed on the sender's thread and freed on the receiver's.
// The C library's per-thread caches never see such a block again where it was made: every box
// took its slow path, a quarter of what a thread link's sender spends per message.
class box_pool {
public:
    static constexpr std::size_t granule = 64;
    static constexpr std::size_t classes = 8;                  // boxes up to 512 bytes are kept
    static constexpr std::size_t batch = 32;                   // blocks a thread and the depot trade at once
    static constexpr std::size_t kept_per_thread = 2 * batch;  // per class
    static constexpr std::size_t batches_in_depot = 64;        // per class: at most 1 MiB of 512-byte boxes

    static void* allocate(std::size_t size) {
        const std::size_t c = class_of(size);
        if (!io::detail::recycle_frames || c >= classes) return ::operator new(size);
        auto& mine = cache().chains[c];
        if (!mine.head) mine = take_batch(c);
        if (!mine.head) return ::operator new(block_bytes(c));
        --mine.count;
        return std::exchange(mine.head, mine.head->next);
    }

    static void deallocate(void* p, std::size_t size) noexcept {
        const std::size_t c = class_of(size);
        if (!io::detail::recycle_frames || c >= classes) return ::operator delete(p);
        auto& mine = cache().chains[c];
        mine.head = new (p) block{mine.head, nullptr};
        if (++mine.count == kept_per_thread) give_batch(c, mine);
    }

    // Batches of `size`'s class that wait in the depot for a thread to take them.
    static std::size_t batches_waiting(std::size_t size) {
        const std::size_t c = class_of(size);
        if (!io::detail::recycle_frames || c >= classes) return 0;
        const std::lock_guard lock(depot_.mutex);
        return depot_.counts[c];
    }

private:
    struct block {
        block* next;
        block* next_batch;  // in the depot: the first block of the batch after this one's
    };
    struct chain {
        block* head = nullptr;
        std::size_t count = 0;
    };

    // Blocks freed by one thread, taken by another. Nothing in it is destroyed, so a thread that
    // ends after its boxes went elsewhere, or one still running at exit, leaves nothing behind.
    struct depot {
        std::mutex mutex;
        std::array<block*, classes> batches;  // no initialisers: depot_{} zeroes them
        std::array<std::size_t, classes> counts;
    };

    struct thread_cache {
        std::array<chain, classes> chains{};
        // Names fork_safe_: an inline variable no code names may be left out of the program.
        thread_cache() noexcept { (void)fork_safe_; }
        thread_cache(const thread_cache&) = delete;
        thread_cache& operator=(const thread_cache&) = delete;
        ~thread_cache() {
            for (auto& c : chains)
                while (c.head) ::operator delete(std::exchange(c.head, c.head->next));
        }
    };

    static std::size_t class_of(std::size_t size) noexcept { return (size - 1) / granule; }
    static std::size_t block_bytes(std::size_t c) noexcept { return (c + 1) * granule; }

    // Moves the newest `batch` blocks of `mine` to the depot, or frees them when it is full.
    static void give_batch(std::size_t c, chain& mine) noexcept {
        block* first = mine.head;
        block* last = first;
        for (std::size_t i = 1; i < batch; ++i) last = last->next;
        mine.head = std::exchange(last->next, nullptr);
        mine.count -= batch;
        {
            const std::lock_guard lock(depot_.mutex);
            if (depot_.counts[c] < batches_in_depot) {
                first->next_batch = std::exchange(depot_.batches[c], first);
                ++depot_.counts[c];
                return;
            }
        }
        while (first) ::operator delete(std::exchange(first, first->next));
    }

    static chain take_batch(std::size_t c) noexcept {
        const std::lock_guard lock(depot_.mutex);
        block* first = depot_.batches[c];
        if (!first) return {};
        depot_.batches[c] = first->next_batch;
        --depot_.counts[c];
        return {first, batch};
    }

    // A process forked while another thread held the depot's lock would find it held for ever,
    // and a primary forks workers while its thread workers send: the lock is taken around
    // fork(). Registered as the program starts, before a thread can hold it; and the depot is
    // constant-initialised, so that no guard of a first use can be left held either.
    static bool lock_depot_around_fork() noexcept {
        ::pthread_atfork([] { depot_.mutex.lock(); }, [] { depot_.mutex.unlock(); }, [] { depot_.mutex.unlock(); });
        return true;
    }
    static inline constinit depot depot_{};
    static inline const bool fork_safe_ = lock_depot_around_fork();

    static thread_cache& cache() noexcept {
        static thread_local thread_cache mine;
        return mine;
    }
};

// An allocator for std::allocate_shared that takes its memory from the box pool.
template <class T>
struct box_allocator {
    using value_type = T;
    static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "cluster: a message type aligned past new's default");

    box_allocator() noexcept = default;
    template <class U>
    box_allocator(const box_allocator<U>&) noexcept {}

    T* allocate(std::size_t n) { return static_cast<T*>(box_pool::allocate(n * sizeof(T))); }
    void deallocate(T* p, std::size_t n) noexcept { box_pool::deallocate(p, n * sizeof(T)); }

    template <class U>
    bool operator==(const box_allocator<U>&) const noexcept {
        return true;
    }
};

// A shared box for a message, its memory from the box pool.
template <class T, class... Args>
std::shared_ptr<T> make_box(Args&&... args) {
    return std::allocate_shared<T>(box_allocator<T>{}, std::forward<Args>(args)...);
}

}  // namespace cluster::detail
