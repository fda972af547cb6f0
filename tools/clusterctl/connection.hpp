// clusterctl's connection to a control socket: one request, then its answer's lines — and,
// when it cannot connect, what the user can do about it.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace clusterctl {

// What went wrong, worded for the user; main() prints it and exits 1.
struct failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class connection {
public:
    // Connected to the socket at `path`, the request sent.
    connection(const std::string& path, const std::string& request) : path_(path) {
        sockaddr_un at{};
        at.sun_family = AF_UNIX;
        if (path.empty() || path.size() >= sizeof at.sun_path)
            throw failure("the socket path must have 1 to " + std::to_string(sizeof at.sun_path - 1) + " bytes");
        std::memcpy(at.sun_path, path.data(), path.size());
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw failure(std::string("socket: ") + std::strerror(errno));
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&at), sizeof at) != 0) {
            const int err = errno;
            ::close(fd_);
            throw failure(why_not_connected(err));
        }
        const std::string line = request + "\n";
        if (::send(fd_, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
            throw failure(gone());
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { ::close(fd_); }

    // The next line, its newline taken off; empty once the primary has closed the connection.
    std::string line() {
        for (;;) {
            if (const auto end = pending_.find('\n'); end != std::string::npos) {
                auto out = pending_.substr(0, end);
                pending_.erase(0, end + 1);
                return out;
            }
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) return {};
            if (n <= 0) return std::exchange(pending_, {});
            pending_.append(buf, static_cast<std::size_t>(n));
        }
    }

    // The answer's one line; throws if the primary closed the connection without one.
    std::string answer() {
        auto out = line();
        if (out.empty()) throw failure(gone());
        return out;
    }

    // What came after the last line() and was not taken yet.
    std::string take_pending() { return std::exchange(pending_, {}); }

    [[nodiscard]] int fd() const noexcept { return fd_; }

private:
    std::string why_not_connected(int err) const {
        switch (err) {
        case ENOENT:
            return "no control socket at " + path_ +
                   ": is the primary running, with its control socket there (--control " + path_ + ")?";
        case EACCES:
        case EPERM:
            return "permission denied at " + path_ + ": only the primary's user and root may use its control socket";
        case ECONNREFUSED:
            return "nothing listens at " + path_ +
                   ": the primary is gone (the file is left from a run that ended badly)";
        case ENOTSOCK: return path_ + " is not a socket";
        default: return "cannot connect to " + path_ + ": " + std::strerror(err);
        }
    }

    std::string gone() const {
        return "the primary at " + path_ + " closed the connection without answering: it may be stopping";
    }

    std::string path_;
    int fd_ = -1;
    std::string pending_;
};

}  // namespace clusterctl
