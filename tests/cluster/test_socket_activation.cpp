// Socket activation as the primary starts: the sockets LISTEN_FDS passes it are adopted under
// their LISTEN_FDNAMES names, and one that is no listening socket stops its construction with
// an error naming the fd, its name and what it is, closing the sockets after it. Each case runs
// in a child of the test, where the passed sockets can be fds 3 and up, as systemd makes them.
// (examples/tests/http_server_socket_activation.sh serves them, with systemd-socket-activate.)
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/descriptors.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace cluster;
using support::proto;

namespace {

// What a child says: either "started: " and what its primary found, or the constructor's error.
using child_body = std::string (*)();

// Runs `body` in a child whose fds 3 and up are `passed`, with LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES (`names`) set for it; returns what body returned.
std::string in_activated_child(std::vector<unique_fd> passed, const char* names, child_body body) {
    auto [from_child, to_parent] = support::make_pipe();
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Out of the way first: dup2 onto 3 must not close a passed socket or the pipe.
        const int out = ::fcntl(to_parent.get(), F_DUPFD_CLOEXEC, 100);
        std::vector<int> high;
        for (const auto& fd : passed) high.push_back(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 100));
        for (std::size_t i = 0; i < high.size(); ++i) ::dup2(high[i], 3 + static_cast<int>(i));
        ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
        ::setenv("LISTEN_FDS", std::to_string(high.size()).c_str(), 1);
        ::setenv("LISTEN_FDNAMES", names, 1);
        const std::string said = body();
        const bool written = ::write(out, said.data(), said.size()) == static_cast<ssize_t>(said.size());
        ::_exit(written ? 0 : 1);
    }
    to_parent.reset();
    std::string said;
    char buffer[4096];
    for (ssize_t n; (n = ::read(from_child.get(), buffer, sizeof buffer)) > 0;)
        said.append(buffer, static_cast<std::size_t>(n));
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    return said;
}

unique_fd datagram_socket() {
    unique_fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    return fd;
}

// A primary, as the child's: whether "web" is adopted already (a second adoption under that
// name is refused), and whether fd 4 is still open; or the constructor's error, then fd 4.
std::string start_primary() {
    const auto fd_4 = [] { return std::string(::fcntl(4, F_GETFD) < 0 ? "fd 4 closed" : "fd 4 open"); };
    try {
        io_context ctx;
        primary<proto> p(support::scripted(start_mode::fork, support::behaviour::identify), support::worker_main);
        auto again = p.try_adopt(support::tcp_listener(), "web");
        const bool taken = !again && again.error() == std::errc::file_exists;
        const bool unset = !std::getenv("LISTEN_PID") && !std::getenv("LISTEN_FDS") && !std::getenv("LISTEN_FDNAMES");
        return std::string("started: ") + (taken ? "web adopted" : "web free") + (unset ? ", unset" : ", still set");
    } catch (const std::system_error& e) {
        return std::string(e.what()) + " | " + fd_4();
    }
}

}  // namespace

TEST_CASE("a passed listening socket is the cluster's under its LISTEN_FDNAMES name, and LISTEN_* are unset") {
    std::vector<unique_fd> passed;
    passed.push_back(support::tcp_listener());
    CHECK(in_activated_child(std::move(passed), "web", start_primary) == "started: web adopted, unset");
}

TEST_CASE("a passed datagram socket stops the primary, the error naming fd 3 and its name, and closes the next") {
    std::vector<unique_fd> passed;
    passed.push_back(datagram_socket());
    passed.push_back(support::tcp_listener());
    const auto said = in_activated_child(std::move(passed), "web:admin", start_primary);
    CHECK(said ==
          "cluster: socket activation: LISTEN_FDS fd 3 (\"web\"): not a stream socket (a datagram socket cannot be "
          "listened on): Protocol wrong type for socket | fd 4 closed");
}

TEST_CASE("a passed pipe is not a socket, and says so") {
    auto [read_end, write_end] = support::make_pipe();
    std::vector<unique_fd> passed;
    passed.push_back(std::move(read_end));
    const auto said = in_activated_child(std::move(passed), "web", start_primary);
    CHECK(said.starts_with("cluster: socket activation: LISTEN_FDS fd 3 (\"web\"): not a socket"));
}
