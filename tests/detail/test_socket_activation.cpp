// cluster::detail::parse_listen_fds() and take_listen_fds(): sd_listen_fds(3)'s reading of
// LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, and the environment left without them.
#include <catch2/catch.hpp>

#include <cluster/detail/socket_activation.hpp>

#include <unistd.h>

#include <cstdlib>
#include <string>

using cluster::detail::activated_socket;
using cluster::detail::parse_listen_fds;
using cluster::detail::take_listen_fds;

namespace {

// "fd=name" for each socket, space-separated: what a case expects, in one line.
std::string listed(const char* pid, const char* fds, const char* names, pid_t self = 100) {
    std::string what;
    auto passed = parse_listen_fds(pid, fds, names, self, what);
    if (!passed) return "error: " + what;
    std::string out;
    for (const activated_socket& s : *passed) out += (out.empty() ? "" : " ") + std::to_string(s.fd) + "=" + s.name;
    return out;
}

}  // namespace

TEST_CASE("the sockets start at fd 3, named by LISTEN_FDNAMES") {
    CHECK(listed("100", "1", nullptr) == "3=");
    CHECK(listed("100", "3", nullptr) == "3= 4= 5=");
    CHECK(listed("100", "2", "web:admin") == "3=web 4=admin");
    CHECK(listed("100", "0", nullptr).empty());
}

TEST_CASE("a name shared, unfit for an inherited socket, or in a list of the wrong length goes for the fd number") {
    CHECK(listed("100", "3", "web:web:admin") == "3= 4= 5=admin");
    CHECK(listed("100", "2", "web") == "3= 4=");
    CHECK(listed("100", "2", "web:admin:extra") == "3= 4=");
    CHECK(listed("100", "2", ":admin") == "3= 4=admin");
    CHECK(listed("100", "1", "cluster-http.socket") == "3=cluster-http.socket");
}

TEST_CASE("LISTEN_PID of another process, or either variable unset: no socket, as sd_listen_fds says") {
    CHECK(listed("101", "2", "web:admin").empty());
    CHECK(listed(nullptr, "2", "web:admin").empty());
    CHECK(listed("100", nullptr, "web").empty());
}

TEST_CASE("numbers that are not numbers are an error naming the variable") {
    CHECK(listed("me", "1", nullptr) == "error: LISTEN_PID=\"me\" is not a process id");
    CHECK(listed("-5", "1", nullptr) == "error: LISTEN_PID=\"-5\" is not a process id");
    CHECK(listed("100", "two", nullptr) == "error: LISTEN_FDS=\"two\" is not a number of descriptors");
    CHECK(listed("100", "-1", nullptr) == "error: LISTEN_FDS=\"-1\" is not a number of descriptors");
    CHECK(listed("100", "99999999999", nullptr) == "error: LISTEN_FDS=\"99999999999\" is not a number of descriptors");
}

TEST_CASE("take_listen_fds() reads this process's environment and unsets all three, whoever they were for") {
    ::setenv("LISTEN_PID", "1", 1);
    ::setenv("LISTEN_FDS", "2", 1);
    ::setenv("LISTEN_FDNAMES", "web:admin", 1);
    std::string what;
    auto passed = take_listen_fds(what);
    REQUIRE(passed.has_value());
    CHECK(passed->empty());
    CHECK(std::getenv("LISTEN_PID") == nullptr);
    CHECK(std::getenv("LISTEN_FDS") == nullptr);
    CHECK(std::getenv("LISTEN_FDNAMES") == nullptr);
    ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
    ::setenv("LISTEN_FDS", "1", 1);
    passed = take_listen_fds(what);
    REQUIRE(passed.has_value());
    REQUIRE(passed->size() == 1);
    CHECK((*passed)[0].fd == 3);
    CHECK(std::getenv("LISTEN_PID") == nullptr);
}
