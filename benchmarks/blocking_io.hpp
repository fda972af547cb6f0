// Blocking read and write of whole buffers: the baselines' side of the benchmarks, and the
// echo ends that both sides of a measurement share.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>

namespace bench {

// Calls step(fd, p, n) until n bytes have moved; false if it ends or fails first.
template <class Byte, class Step>
bool move_full(int fd, Byte* p, std::size_t n, Step step) {
    while (n > 0) {
        const ssize_t r = step(fd, p, n);
        if (r <= 0) return false;
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

inline bool read_full(int fd, void* p, std::size_t n) { return move_full(fd, static_cast<char*>(p), n, ::read); }

inline bool write_full(int fd, const void* p, std::size_t n) {
    return move_full(fd, static_cast<const char*>(p), n, ::write);
}

}  // namespace bench
