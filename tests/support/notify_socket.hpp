// support::notify_socket: a test's stand-in for systemd's notification socket — an AF_UNIX
// datagram socket at a path or an abstract name, named in NOTIFY_SOCKET, read one datagram at a time.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include <cluster/cluster.hpp>
#include <cluster/io/ops.hpp>

#include "waiting.hpp"

namespace support {

class notify_socket {
public:
    // `address`: a path, or "@name" for an abstract one. Sets NOTIFY_SOCKET to it.
    explicit notify_socket(std::string address) : address_(std::move(address)) {
        fd_ = cluster::unique_fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd_) throw std::system_error(errno, std::system_category(), "socket");
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::memcpy(a.sun_path, address_.data(), address_.size());
        auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
        if (address_.front() == '@') a.sun_path[0] = '\0';
        if (::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&a), length) != 0)
            throw std::system_error(errno, std::system_category(), "bind " + address_);
        ::setenv("NOTIFY_SOCKET", address_.c_str(), 1);
    }

    // The next datagram, bounded.
    cluster::task<std::string> next() {
        std::vector<char> buffer(4096);
        auto got = co_await bounded(read_one(fd_.get(), buffer), "a notification");
        if (!got) FAIL("recv from the notification socket: " << got.error().message());
        co_return std::string(buffer.data(), *got);
    }

    // The next datagram that is not WATCHDOG=1.
    cluster::task<std::string> next_not_watchdog() {
        for (;;) {
            auto d = co_await next();
            if (d != "WATCHDOG=1") co_return d;
        }
    }

    [[nodiscard]] const std::string& address() const noexcept { return address_; }

private:
    static cluster::task<cluster::result<std::size_t>> read_one(int fd, std::vector<char>& buffer) {
        co_return co_await cluster::io::recv(fd, buffer);
    }

    std::string address_;
    cluster::unique_fd fd_;
};

}  // namespace support
