// SCM_RIGHTS both ways: packing fds into a sendmsg's control data, and taking ownership
// of every fd a recvmsg brought, at once, so that none can leak whatever happens next.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstring>
#include <iterator>
#include <vector>

#include <cluster/unique_fd.hpp>

namespace cluster::io {

inline int raw_fd(int fd) noexcept { return fd; }
inline int raw_fd(const unique_fd& fd) noexcept { return fd.get(); }

// Writes `fds` (ints or unique_fds, which stay open here) as one SCM_RIGHTS message into
// `control`, resized to fit, and points `msg` at it; no fds means no control data.
template <class Fds>
void attach_fds(msghdr& msg, std::vector<std::byte>& control, const Fds& fds) {
    const std::size_t n = std::size(fds);
    if (n == 0) {
        msg.msg_control = nullptr;
        msg.msg_controllen = 0;
        return;
    }
    control.assign(CMSG_SPACE(sizeof(int) * n), std::byte{});
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::size_t i = 0;
    for (const auto& fd : fds) {
        const int raw = raw_fd(fd);
        std::memcpy(CMSG_DATA(c) + i++ * sizeof(int), &raw, sizeof(int));
    }
}

// Every fd in msg's SCM_RIGHTS control data, now owned.
inline std::vector<unique_fd> take_fds(msghdr& msg) {
    std::vector<unique_fd> fds;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < n; ++i) {
            int raw;
            std::memcpy(&raw, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            fds.emplace_back(raw);
        }
    }
    return fds;
}

}  // namespace cluster::io
