// cluster::detail::adopt_listen_fds(): the sockets a primary is handed through LISTEN_FDS and
// LISTEN_FDNAMES (systemd's socket activation, a binary upgrade's predecessor), adopted.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

#include <cluster/detail/balancer.hpp>
#include <cluster/role.hpp>

namespace cluster::detail {

// Adopts fds 3… as LISTEN_FDS says, when LISTEN_PID is this process, each under its
// LISTEN_FDNAMES name; then removes the three variables, so that no worker sees them.
// Throws std::system_error naming the fd that is no listening socket.
inline void adopt_listen_fds(balancer& b) {
    const char* pid = std::getenv("LISTEN_PID");
    const char* fds = std::getenv("LISTEN_FDS");
    const std::string names_text = std::getenv("LISTEN_FDNAMES") ? std::getenv("LISTEN_FDNAMES") : "";
    const bool mine = pid && fds && parse_positive(pid) == static_cast<unsigned>(::getpid());
    const unsigned count = mine ? parse_positive(fds) : 0;
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    std::vector<std::string> names;
    for (std::size_t from = 0; !names_text.empty();) {
        const auto colon = names_text.find(':', from);
        names.push_back(names_text.substr(from, colon - from));
        if (colon == std::string::npos) break;
        from = colon + 1;
    }
    for (unsigned i = 0; i < count; ++i) {
        const int fd = 3 + static_cast<int>(i);
        std::string name = i < names.size() ? names[i] : std::string{};
        std::string what;
        auto adopted = b.adopt(unique_fd(fd), name, what);
        if (!adopted)
            throw std::system_error(adopted.error(), "cluster: LISTEN_FDS: fd " + std::to_string(fd) +
                                                         (name.empty() ? "" : " (\"" + name + "\")") + ": " + what);
    }
}

}  // namespace cluster::detail
