// cluster::detail::connection_touched: whether a worker began to serve a handed connection —
// read from it, wrote to it or shut it — as the kernel's TCP counters tell after the worker died.
#pragma once

#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

namespace cluster::detail {

// The kernel's struct tcp_info as far as its byte counters (Linux 4.1): glibc's ends before
// them, and <linux/tcp.h>, which has them, cannot be included beside <netinet/tcp.h>. The
// kernel only ever appends to it, and fills in as much as it is given.
struct tcp_info_bytes {
    ::tcp_info base;
    std::uint64_t pacing_rate;
    std::uint64_t max_pacing_rate;
    std::uint64_t bytes_acked;     // of what this end wrote, acknowledged by the client
    std::uint64_t bytes_received;  // from the client, read or not
};
static_assert(offsetof(tcp_info_bytes, pacing_rate) == 104, "glibc's tcp_info is the kernel's first 104 bytes");

// True if someone read bytes out of the TCP connection `fd`, wrote to it, or shut it down.
// Unknowable for any other socket (a Unix-domain one): false, as if untouched.
inline bool connection_touched(int fd) noexcept {
    tcp_info_bytes info{};
    socklen_t length = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0 || length < sizeof info) return false;
    int unread = 0, unsent = 0;
    if (::ioctl(fd, SIOCINQ, &unread) != 0 || ::ioctl(fd, SIOCOUTQ, &unsent) != 0) return false;
    const bool open = info.base.tcpi_state == TCP_ESTABLISHED || info.base.tcpi_state == TCP_CLOSE_WAIT;
    return info.bytes_received > static_cast<std::uint64_t>(unread) || info.bytes_acked > 0 || unsent > 0 || !open;
}

}  // namespace cluster::detail
