// support: a control socket's client for tests — on the test's own loop, so the primary it asks
// goes on meanwhile — and the same client in a child process running as another user.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <span>
#include <string>

#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

namespace support {

// Connected to the control socket at `path`: a Unix socket's connect() does not wait.
inline cluster::unique_fd control_connection(const std::string& path) {
    cluster::unique_fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const auto at = cluster::net::endpoint::unix_socket(path);
    if (::connect(fd.get(), at.data(), at.size()) != 0) FAIL("connect " << path << ": " << std::strerror(errno));
    return fd;
}

inline cluster::task<void> send_text(int fd, std::string text) {
    auto sent = co_await cluster::io::send_all(fd, std::as_bytes(std::span(text)));
    REQUIRE(sent.has_value());
}

// What comes until the server closes the connection.
inline cluster::task<std::string> read_to_end(int fd) {
    std::string out;
    char buf[4096];
    for (;;) {
        auto n = co_await cluster::io::recv(fd, std::span(buf));
        if (!n || *n == 0) co_return out;
        out.append(buf, *n);
    }
}

// The next line, its newline included; `pending` keeps what came after it. Empty at the end.
inline cluster::task<std::string> read_line(int fd, std::string& pending) {
    for (;;) {
        if (const auto end = pending.find('\n'); end != std::string::npos) {
            auto line = pending.substr(0, end + 1);
            pending.erase(0, end + 1);
            co_return line;
        }
        char buf[4096];
        auto n = co_await cluster::io::recv(fd, std::span(buf));
        if (!n || *n == 0) co_return std::string{};
        pending.append(buf, *n);
    }
}

// One request, the client's end then shut, and the whole answer.
inline cluster::task<std::string> ask_control(std::string path, std::string request) {
    auto fd = control_connection(path);
    co_await send_text(fd.get(), std::move(request));
    ::shutdown(fd.get(), SHUT_WR);
    co_return co_await read_to_end(fd.get());
}

// The same from a child process running as `uid` (and its group of the same number): the
// answer, or "connect: " and why it could not connect. Needs root.
inline cluster::task<std::string> ask_control_as(uid_t uid, std::string path, std::string request) {
    int out[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    const auto at = cluster::net::endpoint::unix_socket(path);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(out[0]);
        if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setuid(uid) != 0) ::_exit(2);
        const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (::connect(fd, at.data(), at.size()) != 0) {
            const char* why = std::strerror(errno);
            (void)!::write(out[1], "connect: ", 9);
            (void)!::write(out[1], why, std::strlen(why));
            ::_exit(0);
        }
        (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
        char buf[4096];
        for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
            (void)!::write(out[1], buf, static_cast<std::size_t>(n));
        ::_exit(0);
    }
    ::close(out[1]);
    cluster::unique_fd from(out[0]);
    std::string answer;
    char buf[4096];
    for (;;) {
        auto n = co_await cluster::io::read(from.get(), std::span(buf));
        if (!n || *n == 0) break;
        answer.append(buf, *n);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    co_return answer;
}

}  // namespace support
