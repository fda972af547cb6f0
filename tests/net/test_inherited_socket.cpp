// cluster::net::inspect_inherited on its own: a listening TCP or Unix socket is taken, with
// its address and options, and made close-on-exec; a socket that does not listen, a datagram
// socket, a pipe and a closed descriptor are each refused with their own error, and closed.
#include <catch2/catch.hpp>

#include <cluster/net/inherited_socket.hpp>
#include <cluster/net/listen_socket.hpp>

#include "support/descriptors.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <system_error>
#include <utility>

using namespace cluster;
using namespace cluster::net;

namespace {

// A socket as another process hands it over: open across exec.
unique_fd open_socket(int family, int type) {
    unique_fd fd(::socket(family, type, 0));
    REQUIRE(fd.valid());
    return fd;
}

void bind_loopback(int fd) {
    const auto ep = endpoint::tcp("127.0.0.1", 0);
    REQUIRE(::bind(fd, ep.data(), ep.size()) == 0);
}

bool close_on_exec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

}  // namespace

TEST_CASE("inspect_inherited takes a listening socket: its address, SO_REUSEPORT, IPV6_V6ONLY and TCP_DEFER_ACCEPT, "
          "now close-on-exec") {
    auto tcp = open_socket(AF_INET, SOCK_STREAM);
    const int on = 1;
    REQUIRE(::setsockopt(tcp.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
    const int five_seconds = 5;  // the kernel's retransmissions make it 7
    REQUIRE(::setsockopt(tcp.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &five_seconds, sizeof five_seconds) == 0);
    bind_loopback(tcp.get());
    REQUIRE(::listen(tcp.get(), 8) == 0);
    REQUIRE_FALSE(close_on_exec(tcp.get()));
    const auto address = local_endpoint(tcp.get()).value();
    std::string why;
    auto taken = inspect_inherited(std::move(tcp), why);
    REQUIRE(taken.has_value());
    CHECK(why.empty());
    CHECK(taken->local == address);
    CHECK(taken->reuse_port);
    CHECK_FALSE(taken->v6_only.has_value());
    CHECK(taken->defer_accept == std::chrono::seconds(7));
    CHECK(close_on_exec(taken->fd.get()));

    auto v6 = open_socket(AF_INET6, SOCK_STREAM);
    REQUIRE(::setsockopt(v6.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on) == 0);
    const auto any6 = endpoint::tcp("::", 0);
    if (::bind(v6.get(), any6.data(), any6.size()) == 0 && ::listen(v6.get(), 8) == 0) {
        auto taken6 = inspect_inherited(std::move(v6), why);
        REQUIRE(taken6.has_value());
        CHECK_FALSE(taken6->reuse_port);
        CHECK(taken6->defer_accept == std::chrono::seconds(0));
        CHECK(taken6->v6_only == std::optional<bool>(true));
    }

    const auto name = endpoint::unix_socket("@cluster-test-inherited-" + std::to_string(::getpid()));
    auto unix_fd = listen_socket(name);
    auto taken_unix = inspect_inherited(std::move(unix_fd), why);
    REQUIRE(taken_unix.has_value());
    CHECK(taken_unix->local == name);
}

TEST_CASE("inspect_inherited refuses what does not listen, a datagram socket, a pipe, a closed fd, and closes each") {
    const std::size_t before = support::open_fd_count();
    struct refused {
        unique_fd fd;
        std::errc error;
        const char* says;
    };
    auto bound = open_socket(AF_INET, SOCK_STREAM);
    bind_loopback(bound.get());
    auto datagram = open_socket(AF_INET, SOCK_DGRAM);
    bind_loopback(datagram.get());
    auto ends = support::make_pipe();
    refused cases[] = {
        {std::move(bound), std::errc::invalid_argument, "not listening"},
        {open_socket(AF_INET, SOCK_STREAM), std::errc::invalid_argument, "not listening"},
        {std::move(datagram), std::errc::wrong_protocol_type, "datagram"},
        {std::move(ends[0]), std::errc::not_a_socket, "not a socket"},
        {unique_fd(1000), std::errc::bad_file_descriptor, "not an open descriptor"},
    };
    for (auto& c : cases) {
        INFO(c.says);
        std::string why;
        auto taken = inspect_inherited(std::move(c.fd), why);
        REQUIRE_FALSE(taken.has_value());
        CHECK(taken.error() == c.error);
        CHECK_THAT(why, Catch::Contains(c.says));
    }
    ends[1].reset();
    CHECK(support::open_fd_count() == before);
}
