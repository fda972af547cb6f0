// cluster::detail::socket_activation: the listening sockets systemd (or anything that follows
// sd_listen_fds(3)) passed the primary — LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES — read once.
#pragma once

#include <cluster/config.hpp>

#include <sys/types.h>

#include <string>
#include <vector>

#include <cluster/result.hpp>

namespace cluster::detail {

inline constexpr const char* listen_pid_env = "LISTEN_PID";
inline constexpr const char* listen_fds_env = "LISTEN_FDS";
inline constexpr const char* listen_fdnames_env = "LISTEN_FDNAMES";

// The first passed descriptor (SD_LISTEN_FDS_START); the others follow it.
inline constexpr int listen_fds_start = 3;

struct activated_socket {
    int fd = -1;
    std::string name;  // from LISTEN_FDNAMES; "" when it gave none usable: then the fd number names it
};

// The sockets these values of LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (nullptr: unset) pass
// to process `self`: none if either of the first two is unset or LISTEN_PID is another process
// (as sd_listen_fds(3)). A name is used when LISTEN_FDNAMES has one per socket and that one is
// unique among them and can name an inherited socket (see net::endpoint::inherited). Invalid
// numbers are an error, what is wrong in `what`.
CLUSTER_DECL result<std::vector<activated_socket>> parse_listen_fds(const char* pid, const char* fds, const char* names,
                                                                    pid_t self, std::string& what);

// The same, from this process's environment, which no longer has the three afterwards (a
// LISTEN_PID of ours would be wrong in every worker, and a worker must not adopt the sockets).
CLUSTER_DECL result<std::vector<activated_socket>> take_listen_fds(std::string& what);

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/socket_activation.ipp>
#endif
