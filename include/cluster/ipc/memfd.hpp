// cluster::ipc::sealed_memfd: a large payload written once into an anonymous memory file
// and sealed, so it can cross to another process as one fd instead of a socket copy.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::ipc {

// Creates a memfd of `size` bytes, lets `fill(std::byte*)` write it through a shared
// mapping, then seals it against writes and resizing: the receiver may map it and decode
// in place, trusting that nothing changes under it.
template <class Fill>
result<unique_fd> make_sealed_memfd(std::size_t size, Fill&& fill) {
    unique_fd fd(::memfd_create("cluster-message", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) return errno_code(errno);
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return errno_code(errno);
    if (size > 0) {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
        if (p == MAP_FAILED) return errno_code(errno);
        std::forward<Fill>(fill)(static_cast<std::byte*>(p));
        // F_SEAL_WRITE is refused while a writable mapping exists.
        ::munmap(p, size);
    }
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
        return errno_code(errno);
    return fd;
}

}  // namespace cluster::ipc
