// support: the descriptors tests make — socketpairs, pipes, a loopback listener — the count
// of open ones, which every leak check compares before and after, and SIGPIPE's default.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <string>
#include <system_error>

#include <cluster/unique_fd.hpp>

namespace support {

// Everything in the file `fd` refers to, from its start (a memfd or a file a test wrote).
inline std::string read_all(int fd) {
    std::string out;
    char buf[65536];
    for (off_t at = 0;;) {
        const ssize_t n = ::pread(fd, buf, sizeof buf, at);
        if (n <= 0) return out;
        out.append(buf, static_cast<std::size_t>(n));
        at += n;
    }
}

inline std::array<cluster::unique_fd, 2> make_socketpair(int type = SOCK_STREAM) {
    int sv[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0)
        throw std::system_error(errno, std::system_category(), "socketpair");
    return {cluster::unique_fd(sv[0]), cluster::unique_fd(sv[1])};
}

// A close-on-exec pipe: {read end, write end}.
inline std::array<cluster::unique_fd, 2> make_pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
    return {cluster::unique_fd(p[0]), cluster::unique_fd(p[1])};
}

// A TCP socket listening on 127.0.0.1 at a port the kernel picks (see local_address).
inline cluster::unique_fd tcp_listener(int backlog = 16) {
    cluster::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd.get(), backlog) != 0)
        throw std::system_error(errno, std::system_category(), "bind/listen");
    return fd;
}

inline sockaddr_in local_address(int fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        throw std::system_error(errno, std::system_category(), "getsockname");
    return addr;
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

// SIGPIPE's default action kills the process: with it in place while this lives, surviving
// a write to a closed peer proves that none was raised.
struct sigpipe_default {
    struct sigaction old {};
    sigpipe_default() {
        struct sigaction sa {};
        sa.sa_handler = SIG_DFL;
        ::sigaction(SIGPIPE, &sa, &old);
    }
    sigpipe_default(const sigpipe_default&) = delete;
    sigpipe_default& operator=(const sigpipe_default&) = delete;
    ~sigpipe_default() { ::sigaction(SIGPIPE, &old, nullptr); }
};

}  // namespace support
