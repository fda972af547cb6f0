// support::redis_server: a real redis-server of the test's own, on loopback and a Unix socket
// in a temp dir, nothing saved; started (ready when it says so), stopped, restarted.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <cluster/net/endpoint.hpp>
#include <cluster/unique_fd.hpp>

#include "support/temp_dir.hpp"

namespace support {

// A TCP port on 127.0.0.1 that nobody listens on now (the kernel's pick, released).
inline std::uint16_t free_loopback_port() {
    cluster::unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (!fd || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        throw std::system_error(errno, std::system_category(), "free_loopback_port");
    return ntohs(addr.sin_port);
}

class redis_server {
public:
    // `extra`: more redis-server options, e.g. {"--requirepass", "secret"}.
    explicit redis_server(std::vector<std::string> extra = {}, bool start_now = true)
        : port_(free_loopback_port()), extra_(std::move(extra)) {
        if (start_now) start();
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;
    ~redis_server() { stop(); }

    [[nodiscard]] cluster::net::endpoint tcp() const { return cluster::net::endpoint::tcp("127.0.0.1", port_); }
    [[nodiscard]] cluster::net::endpoint unix_socket() const {
        return cluster::net::endpoint::unix_socket(socket_path());
    }
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

    // Returns once the server has said it accepts connections (at most 10 s).
    void start() {
        int out[2];
        if (::pipe2(out, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
        cluster::unique_fd read_end(out[0]);
        cluster::unique_fd write_end(out[1]);
        std::vector<std::string> args{"redis-server",
                                      "--port",
                                      std::to_string(port_),
                                      "--bind",
                                      "127.0.0.1",
                                      "--unixsocket",
                                      socket_path(),
                                      "--dir",
                                      dir_.str(),
                                      "--save",
                                      "",
                                      "--appendonly",
                                      "no",
                                      "--daemonize",
                                      "no",
                                      "--loglevel",
                                      "notice",
                                      "--logfile",
                                      ""};
        args.insert(args.end(), extra_.begin(), extra_.end());
        pid_ = ::fork();
        if (pid_ < 0) throw std::system_error(errno, std::system_category(), "fork");
        if (pid_ == 0) {
            // Its output goes to the pipe only (a caller's stderr held open would outlive us),
            // and it dies with this process, whatever ends it.
            ::dup2(write_end.get(), STDOUT_FILENO);
            ::dup2(write_end.get(), STDERR_FILENO);
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execvp("redis-server", argv.data());
            ::_exit(127);
        }
        write_end = cluster::unique_fd{};
        wait_until_ready(read_end.get());
    }

    // SIGTERM, and reaped: its port and socket are free again when this returns.
    void stop() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {}
        pid_ = -1;
    }

private:
    [[nodiscard]] std::string socket_path() const { return dir_.file("redis.sock"); }

    void wait_until_ready(int fd) {
        std::string seen;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (seen.find("Ready to accept connections") == std::string::npos) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{fd, POLLIN, 0};
            char buf[4096];
            const ssize_t n = left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) == 1
                                  ? ::read(fd, buf, sizeof buf)
                                  : 0;
            if (n <= 0) {
                stop();
                throw std::runtime_error("redis-server did not start; it said: " + seen);
            }
            seen.append(buf, static_cast<std::size_t>(n));
        }
    }

    temp_dir dir_;
    std::uint16_t port_;
    std::vector<std::string> extra_;
    pid_t pid_ = -1;
};

}  // namespace support
