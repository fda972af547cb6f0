// Tests cluster/io/detail/frame_pool.hpp: a frame freed is the next one of its size class,
// frames too big for the classes go to the heap, and each thread keeps its own.
#include <catch2/catch.hpp>

#include <cluster/io/detail/frame_pool.hpp>

#include <thread>
#include <vector>

using cluster::io::detail::frame_pool;
using cluster::io::detail::recycle_frames;

TEST_CASE("frame_pool: a frame freed is reused by the next one of its size class, on its thread only") {
    if (!recycle_frames) {
        WARN("frames are not recycled under AddressSanitizer, by design");
        return;
    }
    void* first = frame_pool::allocate(200);
    frame_pool::deallocate(first, 200);
    void* again = frame_pool::allocate(250);  // 193..256 bytes: the same class
    CHECK(again == first);
    void* other_class = frame_pool::allocate(100);
    CHECK(other_class != first);
    frame_pool::deallocate(again, 250);
    void* elsewhere = nullptr;
    std::thread([&] {
        elsewhere = frame_pool::allocate(200);
        frame_pool::deallocate(elsewhere, 200);
    }).join();
    CHECK(elsewhere != first);  // the other thread had nothing cached
    frame_pool::deallocate(other_class, 100);
}

TEST_CASE("frame_pool: a big frame, and one past what a class keeps, go back to the heap") {
    void* big = frame_pool::allocate(64 * 1024);
    frame_pool::deallocate(big, 64 * 1024);
    CHECK(frame_pool::kept(64 * 1024) == 0);
    const std::size_t most = recycle_frames ? frame_pool::kept_bytes_per_class / 2048 : 0;
    std::vector<void*> frames;
    for (std::size_t i = 0; i < most + 8; ++i) frames.push_back(frame_pool::allocate(2048));
    CHECK(frame_pool::kept(2048) == 0);
    for (void* f : frames) frame_pool::deallocate(f, 2048);
    CHECK(frame_pool::kept(2048) == most);
}
