// What the test files share: a socketpair as two unique_fds, and the number of open
// descriptors, which every leak check compares before and after.
#pragma once

#include <dirent.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <system_error>

#include <cluster/io/unique_fd.hpp>

namespace test_support {

inline std::array<cluster::unique_fd, 2> make_socketpair(int type = SOCK_STREAM) {
    int sv[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0)
        throw std::system_error(errno, std::system_category(), "socketpair");
    return {cluster::unique_fd(sv[0]), cluster::unique_fd(sv[1])};
}

// Open descriptors, not counting the one reading /proc/self/fd.
inline std::size_t open_fd_count() {
    std::size_t n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) throw std::system_error(errno, std::system_category(), "opendir /proc/self/fd");
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n - 1;
}

} // namespace test_support
