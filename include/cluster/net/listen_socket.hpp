// cluster::net::listen_socket: a stream socket listening on an endpoint, with the options servers
// need (address and port reuse, backlog, dual-stack IPv6, deferred accept, a socket file's mode),
// and the safe reuse and removal of a Unix socket file.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include <cluster/error.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::net {

struct listen_options {
    // Pending connections; the kernel caps it at net.core.somaxconn.
    int backlog = SOMAXCONN;
    // SO_REUSEADDR (IP only): a restarted server binds at once, though connections of its
    // previous run still linger in TIME_WAIT.
    bool reuse_address = true;
    // SO_REUSEPORT (IP only): several sockets on one address, the kernel spreading new
    // connections among them — one per worker.
    bool reuse_port = false;
    // IPV6_V6ONLY for IPv6 endpoints: true serves IPv6 only, false also IPv4 (as
    // ::ffff:a.b.c.d). Unset keeps the system's default, net.ipv6.bindv6only.
    std::optional<bool> v6_only = std::nullopt;
    // TCP_DEFER_ACCEPT (IP only; a Unix socket has none): a connection is accepted once its
    // first bytes arrive, or once it has been silent about this long (the kernel counts it in
    // SYN-ACK retransmissions: 1 s, then 3, 7...), not as its handshake ends. A server whose
    // clients speak first, as HTTP's do, then finds the request there: no read armed and no
    // wake-up per connection for bytes still on their way, and no descriptor held by a client
    // that connects and says nothing. Not for a protocol where the server speaks first (a
    // greeting, SMTP): its clients would wait that long. 0: off, the system's default.
    std::chrono::seconds defer_accept{0};
    // A Unix socket file outlives a process that crashed, and bind() then fails. Replace
    // such a file, but only one that is a socket and refuses connections: never a file of
    // another kind, and never a socket somebody listens on.
    bool replace_stale_unix_socket = true;
    // The socket file's permissions, as chmod() sets them (a Unix path only: an IP endpoint or
    // an abstract name has no file, and gets EINVAL). Set after bind() and before listen(), so
    // no client connects before they apply: 0660 lets the file's group connect, 0666 anyone
    // (Node's readableAll and writableAll). Unset: what the umask leaves.
    std::optional<mode_t> mode = std::nullopt;
};

namespace detail {

enum class unix_path_state { stale_socket, live_socket, not_a_socket, unknown };

// A probe connect() tells a stale socket file (ECONNREFUSED) from a live one. It is
// non-blocking: a listener with a full backlog is live, and must not hang us (EAGAIN).
inline unix_path_state probe_unix_path(const endpoint& ep) {
    struct stat st {};
    if (::lstat(ep.address().c_str(), &st) != 0) return unix_path_state::unknown;
    if (!S_ISSOCK(st.st_mode)) return unix_path_state::not_a_socket;
    unique_fd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!probe) return unix_path_state::unknown;
    if (::connect(probe.get(), ep.data(), ep.size()) == 0) return unix_path_state::live_socket;
    if (errno == ECONNREFUSED) return unix_path_state::stale_socket;
    // EAGAIN (backlog full), EPROTOTYPE (a datagram socket), EACCES: someone else's.
    return errno == EAGAIN || errno == EPROTOTYPE ? unix_path_state::live_socket : unix_path_state::unknown;
}

inline result<void> set_socket_option(int fd, int level, int name, int value) noexcept {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) return errno_code(errno);
    return {};
}

// bind(), and on EADDRINUSE at a Unix path the file is probed: a stale socket file is
// unlinked and bound again. `step` names what failed, for listen_socket()'s message.
inline result<void> bind_to(int fd, const endpoint& ep, const listen_options& o, std::string& step) {
    step = "bind";
    if (::bind(fd, ep.data(), ep.size()) == 0) return {};
    const int err = errno;
    if (err != EADDRINUSE || !ep.is_unix() || ep.is_abstract()) return errno_code(err);
    switch (probe_unix_path(ep)) {
    case unix_path_state::live_socket: step = "bind (a process is listening there)"; break;
    case unix_path_state::not_a_socket: step = "bind (the path exists and is not a socket)"; break;
    case unix_path_state::unknown: step = "bind (the socket file there could not be probed)"; break;
    case unix_path_state::stale_socket:
        if (!o.replace_stale_unix_socket) {
            step = "bind (a stale socket file is there, and replace_stale_unix_socket is off)";
            break;
        }
        step = "unlink the stale socket file";
        if (::unlink(ep.address().c_str()) != 0 && errno != ENOENT) return errno_code(errno);
        step = "bind (after removing a stale socket file)";
        if (::bind(fd, ep.data(), ep.size()) == 0) return {};
        return errno_code(errno);
    }
    return errno_code(err);
}

// A Unix socket path: the one kind of endpoint with a file of its own.
inline bool has_socket_file(const endpoint& ep) noexcept {
    return ep.is_unix() && !ep.is_abstract() && !ep.is_unnamed();
}

inline result<void> check_mode(const endpoint& ep, const listen_options& o, std::string& step) {
    if (!o.mode) return {};
    step = "mode: only a Unix socket path has a file to set it on";
    if (!has_socket_file(ep)) return errno_code(EINVAL);
    step = "mode: not a file mode (at most 07777)";
    if (*o.mode > 07777) return errno_code(EINVAL);
    return {};
}

// A file bind() just made that cannot get its mode is removed: left there, it would be a
// stale socket file nobody owns.
inline result<void> apply_mode(const endpoint& ep, const listen_options& o, std::string& step) {
    if (!o.mode) return {};
    step = "chmod the socket file";
    if (::chmod(ep.address().c_str(), *o.mode) == 0) return {};
    const int err = errno;
    ::unlink(ep.address().c_str());
    return errno_code(err);
}

inline result<unique_fd> open_listening(const endpoint& ep, const listen_options& o, std::string& step) {
    if (auto checked = check_mode(ep, o, step); !checked) return checked.error();
    step = "socket";
    unique_fd fd(::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return errno_code(errno);
    if (ep.is_ip()) {
        step = "setsockopt(SO_REUSEADDR)";
        auto r = set_socket_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, o.reuse_address ? 1 : 0);
        if (r && o.reuse_port) {
            step = "setsockopt(SO_REUSEPORT)";
            r = set_socket_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, 1);
        }
        if (r && ep.family() == AF_INET6 && o.v6_only) {
            step = "setsockopt(IPV6_V6ONLY)";
            r = set_socket_option(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, *o.v6_only ? 1 : 0);
        }
        if (r && o.defer_accept.count() > 0) {
            step = "setsockopt(TCP_DEFER_ACCEPT)";
            r = set_socket_option(
                fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT,
                static_cast<int>(std::min<std::chrono::seconds::rep>(o.defer_accept.count(), INT_MAX)));
        }
        if (!r) return r.error();
    }
    if (auto bound = bind_to(fd.get(), ep, o, step); !bound) return bound.error();
    if (auto moded = apply_mode(ep, o, step); !moded) return moded.error();
    step = "listen";
    if (::listen(fd.get(), o.backlog) != 0) return errno_code(errno);
    return fd;
}

}  // namespace detail

// The file a Unix-domain socket was bound to, as it was then. It is removed only while its
// path still names that very file: a server started on the path since keeps its own. Remove
// it before the socket closes: until then no new file can have the old one's inode.
class socket_file {
public:
    socket_file() noexcept = default;

    // The file at ep's path now; none for an endpoint without one, or a path with no file.
    static socket_file at(const endpoint& ep) {
        socket_file f;
        struct stat st {};
        if (!detail::has_socket_file(ep) || ::lstat(ep.address().c_str(), &st) != 0) return f;
        f.path_ = ep.address();
        f.device_ = st.st_dev;
        f.inode_ = st.st_ino;
        return f;
    }

    // Unlinks it, once, if it is still there.
    void remove() noexcept {
        struct stat st {};
        if (!path_.empty() && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == device_ && st.st_ino == inode_)
            ::unlink(path_.c_str());
        path_.clear();
    }

private:
    std::string path_;
    dev_t device_ = 0;
    ino_t inode_ = 0;
};

// A close-on-exec socket listening on `ep` (blocking: io_uring waits for it). With port 0
// the kernel picks the port: local_endpoint(fd) says which. A Unix socket file is left on
// disk when the socket closes; whoever owns the path removes it (socket_file does so safely).
//
// Replacing a stale socket file is safe against live servers, not against a second
// process starting on the same path at the same instant: start one server per path.
inline result<unique_fd> try_listen_socket(const endpoint& ep, const listen_options& o = {}) {
    std::string step;
    return detail::open_listening(ep, o, step);
}

// The same, throwing std::system_error that names the endpoint and the failed step:
// "cluster: cannot listen on 127.0.0.1:80: bind: Permission denied".
inline unique_fd listen_socket(const endpoint& ep, const listen_options& o = {}) {
    std::string step;
    auto fd = detail::open_listening(ep, o, step);
    if (!fd) throw std::system_error(fd.error(), "cluster: cannot listen on " + ep.to_string() + ": " + step);
    return std::move(*fd);
}

}  // namespace cluster::net
