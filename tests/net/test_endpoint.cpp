// cluster::endpoint and listen_socket: parsing and printing every form (inherited names too),
// relative Unix paths made absolute, addresses from the kernel, listening on IPv4, IPv6, Unix
// paths and abstract names with the kernel choosing the port, stale and live Unix socket
// files, a socket file's mode and its safe removal, SO_REUSEPORT, IPV6_V6ONLY, TCP_DEFER_ACCEPT,
// and the sticky hash.
#include <catch2/catch.hpp>

#include <cluster/net/endpoint.hpp>
#include <cluster/net/listen_socket.hpp>

#include "support/descriptors.hpp"
#include "support/loopback.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

using namespace cluster;
using namespace cluster::net;

namespace {

// A blocking connect: these tests check listening sockets, not the runtime.
result<unique_fd> connect_to(const endpoint& ep) {
    unique_fd fd(::socket(ep.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(fd.get(), ep.data(), ep.size()) != 0) return errno_code(errno);
    return fd;
}

endpoint bound(int fd) {
    auto ep = local_endpoint(fd);
    REQUIRE(ep.has_value());
    return *ep;
}

int socket_option(int fd, int level, int name) {
    int value = -1;
    socklen_t len = sizeof value;
    REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
    return value;
}

// A path under /tmp for this test process, gone before and after.
struct temp_path {
    std::string path;
    explicit temp_path(std::string_view tag)
        : path("/tmp/cluster-test-endpoint-" + std::to_string(::getpid()) + "-" + std::string(tag) + ".sock") {
        ::unlink(path.c_str());
    }
    ~temp_path() { ::unlink(path.c_str()); }
};

// Whether `fd` has a connection to accept within `wait` (0: now).
bool acceptable(int fd, int wait_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, wait_ms) == 1;
}

// The connection `listening` has queued, and its peer's address.
std::pair<unique_fd, endpoint> accept_one(int listening) {
    unique_fd accepted(::accept4(listening, nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(accepted.valid());
    auto peer = peer_endpoint(accepted.get());
    REQUIRE(peer.has_value());
    return {std::move(accepted), *peer};
}

bool is_socket_file(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

}  // namespace

TEST_CASE("endpoint::parse reads IPv4, IPv6 and Unix-domain forms, and to_string prints them back") {
    struct form {
        std::string_view text;
        int family;
        std::uint16_t port;
        std::string_view address;
        std::string_view printed;
    };
    const form forms[] = {
        {"127.0.0.1:8080", AF_INET, 8080, "127.0.0.1", "127.0.0.1:8080"},
        {"0.0.0.0:0", AF_INET, 0, "0.0.0.0", "0.0.0.0:0"},
        {"255.255.255.255:65535", AF_INET, 65535, "255.255.255.255", "255.255.255.255:65535"},
        {"[::1]:8080", AF_INET6, 8080, "::1", "[::1]:8080"},
        {"[::]:8000", AF_INET6, 8000, "::", "[::]:8000"},
        {"[2001:DB8::0:1]:443", AF_INET6, 443, "2001:db8::1", "[2001:db8::1]:443"},
        {"[::ffff:10.0.0.1]:80", AF_INET6, 80, "::ffff:10.0.0.1", "[::ffff:10.0.0.1]:80"},
        {"[fe80::1%1]:80", AF_INET6, 80, "fe80::1%1", "[fe80::1%1]:80"},
        {"[fe80::1%lo]:80", AF_INET6, 80, "fe80::1%1", "[fe80::1%1]:80"},
        {"unix:/run/app.sock", AF_UNIX, 0, "/run/app.sock", "unix:/run/app.sock"},
        {"unix:relative.sock", AF_UNIX, 0, "relative.sock", "unix:relative.sock"},
        {"/run/app.sock", AF_UNIX, 0, "/run/app.sock", "unix:/run/app.sock"},
        {"unix:@app", AF_UNIX, 0, "@app", "unix:@app"},
        {"@app", AF_UNIX, 0, "@app", "unix:@app"},
    };
    for (const auto& f : forms) {
        INFO(f.text);
        auto ep = endpoint::parse(f.text);
        REQUIRE(ep.has_value());
        CHECK(ep->family() == f.family);
        CHECK(ep->port() == f.port);
        CHECK(ep->address() == f.address);
        CHECK(ep->to_string() == f.printed);
        CHECK(ep->is_ip() == (f.family != AF_UNIX));
        CHECK(ep->is_abstract() == f.address.starts_with('@'));
        auto again = endpoint::parse(ep->to_string());
        REQUIRE(again.has_value());
        CHECK(*again == *ep);
    }
    // The longest path sun_path holds, and an abstract name with a NUL byte in it.
    const std::string longest = "/" + std::string(106, 'p');
    auto ep = endpoint::parse("unix:" + longest);
    REQUIRE(ep.has_value());
    CHECK(ep->address() == longest);
    using namespace std::string_view_literals;
    auto odd = endpoint::parse("@a\0b"sv);
    REQUIRE(odd.has_value());
    CHECK(odd->address() == "@a\0b"sv);
    CHECK(endpoint::parse(odd->to_string()).value() == *odd);
}

TEST_CASE("endpoint::parse rejects malformed text with an error that says what is wrong") {
    struct bad {
        std::string_view text;
        endpoint_errc why;
    };
    const std::string too_long = "unix:/" + std::string(107, 'p');
    const bad cases[] = {
        {"", endpoint_errc::empty},
        {"127.0.0.1", endpoint_errc::missing_port},
        {"127.0.0.1:", endpoint_errc::missing_port},
        {"[::1]", endpoint_errc::missing_port},
        {"127.0.0.1:http", endpoint_errc::invalid_port},
        {"127.0.0.1:65536", endpoint_errc::invalid_port},
        {"127.0.0.1:-1", endpoint_errc::invalid_port},
        {"127.0.0.1:+80", endpoint_errc::invalid_port},
        {"127.0.0.1:80 ", endpoint_errc::invalid_port},
        {"[::1]:99999999999", endpoint_errc::invalid_port},
        {":8080", endpoint_errc::missing_address},
        {"[]:8080", endpoint_errc::missing_address},
        {"localhost:80", endpoint_errc::invalid_address},
        {"256.0.0.1:80", endpoint_errc::invalid_address},
        {"1.2.3:80", endpoint_errc::invalid_address},
        {"[::1:80", endpoint_errc::invalid_address},
        {"[::1]80", endpoint_errc::invalid_address},
        {"[::g]:80", endpoint_errc::invalid_address},
        {"::1:8080", endpoint_errc::unbracketed_ipv6},
        {"::1", endpoint_errc::unbracketed_ipv6},
        {"[fe80::1%no-such-interface]:80", endpoint_errc::unknown_interface},
        {"[fe80::1%]:80", endpoint_errc::unknown_interface},
        {"unix:", endpoint_errc::invalid_path},
        {"unix:@", endpoint_errc::invalid_path},
        {"@", endpoint_errc::invalid_path},
        {too_long, endpoint_errc::path_too_long},
        {"fd:", endpoint_errc::invalid_name},
        {"fd:a:b", endpoint_errc::invalid_name},
        {"fd:tab\there", endpoint_errc::invalid_name},
    };
    for (const auto& c : cases) {
        INFO('"' << std::string(c.text) << '"');
        auto ep = endpoint::parse(c.text);
        REQUIRE_FALSE(ep.has_value());
        CHECK(ep.error() == c.why);
        CHECK(ep.error().category().name() == std::string_view("cluster.endpoint"));
        CHECK_FALSE(ep.error().message().empty());
    }
    using namespace std::string_view_literals;
    auto nul = endpoint::parse("unix:/tmp/a\0b"sv);
    REQUIRE_FALSE(nul.has_value());
    CHECK(nul.error() == endpoint_errc::invalid_path);
}

TEST_CASE("endpoint::tcp, unix_socket and the text constructor build endpoints, or throw quoting the text") {
    CHECK(endpoint::tcp("127.0.0.1", 8080).to_string() == "127.0.0.1:8080");
    CHECK(endpoint::tcp("::1", 8080).to_string() == "[::1]:8080");
    CHECK(endpoint::tcp("[::1]", 8080) == endpoint::tcp("::1", 8080));
    CHECK(endpoint::unix_socket("/run/app.sock").to_string() == "unix:/run/app.sock");
    CHECK(endpoint::unix_socket("@app").is_abstract());
    CHECK(endpoint("[::]:8000") == endpoint::tcp("::", 8000));
    CHECK(endpoint().empty());
    CHECK(endpoint().to_string() == "(none)");
    CHECK(endpoint::tcp("127.0.0.1", 1) != endpoint::tcp("127.0.0.1", 2));
    CHECK(endpoint::tcp("127.0.0.1", 1) != endpoint::tcp("127.0.0.2", 1));

    try {
        (void)endpoint::tcp("localhost", 80);
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == endpoint_errc::invalid_address);
        CHECK_THAT(e.what(), Catch::Contains("\"localhost\"") && Catch::Contains("not resolved"));
    }
    try {
        (void)endpoint("0.0.0.0");
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == endpoint_errc::missing_port);
        CHECK_THAT(e.what(), Catch::Contains("\"0.0.0.0\""));
    }
    CHECK_THROWS_AS(endpoint::unix_socket(""), std::system_error);
}

TEST_CASE("fd:name names an inherited socket: parsed, printed and compared by its name, with no address") {
    const auto web = endpoint::inherited("web");
    CHECK(web.is_inherited());
    CHECK(web.name() == "web");
    CHECK(web.to_string() == "fd:web");
    CHECK(web.family() == AF_UNSPEC);
    CHECK_FALSE(web.empty());
    CHECK(web.address().empty());
    CHECK(endpoint("fd:web") == web);
    CHECK(endpoint("fd:3") != web);
    CHECK(endpoint("fd:3").name() == "3");
    CHECK(endpoint::inherited(std::string(255, 'n')).name().size() == 255);
    CHECK_FALSE(endpoint::tcp("127.0.0.1", 80).is_inherited());
    CHECK(endpoint::tcp("127.0.0.1", 80).name().empty());
    try {
        (void)endpoint::inherited(std::string(256, 'n'));
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == endpoint_errc::invalid_name);
    }
}

TEST_CASE("absolute() makes a relative Unix path absolute against the working directory, as path.resolve() does") {
    char cwd[PATH_MAX];
    REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
    const std::string here = cwd;
    const std::string base = here == "/" ? "" : here;
    struct form {
        std::string text;
        std::string absolute;
    };
    const form forms[] = {
        {"unix:s.sock", base + "/s.sock"},
        {"unix:./run/../s.sock", base + "/s.sock"},
        {"unix:run//s.sock", base + "/run/s.sock"},
        {"unix:/abs/./s.sock", "/abs/./s.sock"},  // an absolute path is the user's, as written
        {"unix:@name", "@name"},
        {"127.0.0.1:80", "127.0.0.1"},
        {"fd:web", ""},
    };
    for (const auto& f : forms) {
        INFO(f.text);
        auto ep = endpoint(f.text).absolute();
        REQUIRE(ep.has_value());
        CHECK(ep->address() == f.absolute);
    }
    auto too_long = endpoint::unix_socket(std::string(100, 'p')).absolute();
    if (here.size() > 6) {
        REQUIRE_FALSE(too_long.has_value());
        CHECK(too_long.error() == endpoint_errc::path_too_long);
    }
}

TEST_CASE("endpoint::from_sockaddr takes the kernel's addresses, unnamed Unix sockets included") {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(443);
    in.sin_addr.s_addr = htonl(0x0a000001);
    auto v4 = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in);
    REQUIRE(v4.has_value());
    CHECK(v4->to_string() == "10.0.0.1:443");
    CHECK(v4->size() == sizeof in);

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(80);
    in6.sin6_addr = in6addr_loopback;
    in6.sin6_flowinfo = htonl(42);  // flow labels tag packets; they do not name a host
    auto v6 = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    REQUIRE(v6.has_value());
    CHECK(*v6 == endpoint::tcp("::1", 80));

    // One end of a socketpair has no name: the kernel reports just the family.
    auto pair = support::make_socketpair();
    auto unnamed = local_endpoint(pair[0].get());
    REQUIRE(unnamed.has_value());
    CHECK(unnamed->is_unix());
    CHECK(unnamed->is_unnamed());
    CHECK(unnamed->address().empty());
    CHECK(unnamed->to_string() == "unix:");
    CHECK_FALSE(endpoint::parse(unnamed->to_string()).has_value());

    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, "\0abs", 4);
    const socklen_t abstract_len = offsetof(sockaddr_un, sun_path) + 4;
    auto abstract = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&un), abstract_len);
    REQUIRE(abstract.has_value());
    CHECK(*abstract == endpoint::unix_socket("@abs"));

    sockaddr other{};
    other.sa_family = AF_PACKET;
    auto unsupported = endpoint::from_sockaddr(&other, sizeof other);
    REQUIRE_FALSE(unsupported.has_value());
    CHECK(unsupported.error() == std::errc::address_family_not_supported);
    auto short_v4 = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in - 4);
    REQUIRE_FALSE(short_v4.has_value());
    CHECK(short_v4.error() == std::errc::invalid_argument);

    auto bad_fd = local_endpoint(-1);
    REQUIRE_FALSE(bad_fd.has_value());
    CHECK(bad_fd.error() == std::errc::bad_file_descriptor);
}

TEST_CASE("listen_socket on IPv4 port 0: local_endpoint gives the kernel's port, and clients connect") {
    auto fd = listen_socket(endpoint::tcp("127.0.0.1", 0));
    const auto ep = bound(fd.get());
    CHECK(ep.family() == AF_INET);
    CHECK(ep.address() == "127.0.0.1");
    CHECK(ep.port() != 0);
    CHECK(socket_option(fd.get(), SOL_SOCKET, SO_ACCEPTCONN) == 1);
    CHECK(socket_option(fd.get(), SOL_SOCKET, SO_REUSEADDR) == 1);  // on unless asked otherwise
    CHECK(socket_option(fd.get(), SOL_SOCKET, SO_REUSEPORT) == 0);
    CHECK((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
    auto client = connect_to(ep);
    REQUIRE(client.has_value());
    auto peer = peer_endpoint(client->get());
    REQUIRE(peer.has_value());
    CHECK(*peer == ep);

    auto plain = try_listen_socket(endpoint::tcp("127.0.0.1", 0), {.reuse_address = false});
    REQUIRE(plain.has_value());
    CHECK(socket_option(plain->get(), SOL_SOCKET, SO_REUSEADDR) == 0);
}

TEST_CASE("listen_socket on IPv6 [::1] port 0") {
    if (!support::ipv6_loopback_available()) {
        WARN(support::no_ipv6);
        return;
    }
    auto fd = listen_socket(endpoint("[::1]:0"));
    const auto ep = bound(fd.get());
    CHECK(ep.family() == AF_INET6);
    CHECK(ep.address() == "::1");
    CHECK(ep.port() != 0);
    CHECK(ep.to_string() == "[::1]:" + std::to_string(ep.port()));
    auto client = connect_to(ep);
    REQUIRE(client.has_value());
}

TEST_CASE("v6_only: a dual-stack socket takes IPv4 clients as ::ffff:a.b.c.d, a v6-only one refuses them") {
    if (!support::ipv6_loopback_available()) {
        WARN(support::no_ipv6);
        return;
    }
    {
        auto dual = listen_socket(endpoint("[::]:0"), {.v6_only = false});
        CHECK(socket_option(dual.get(), IPPROTO_IPV6, IPV6_V6ONLY) == 0);
        const auto port = bound(dual.get()).port();
        auto client = connect_to(endpoint::tcp("127.0.0.1", port));
        REQUIRE(client.has_value());
        sockaddr_storage peer{};
        socklen_t len = sizeof peer;
        unique_fd accepted(::accept4(dual.get(), reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC));
        REQUIRE(accepted.valid());
        auto seen = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&peer), len);
        REQUIRE(seen.has_value());
        CHECK(seen->address() == "::ffff:127.0.0.1");
        // Sticky scheduling sends this client where its plain IPv4 address would go.
        CHECK(seen->address_hash() == endpoint::tcp("127.0.0.1", 1).address_hash());
    }
    auto v6 = listen_socket(endpoint("[::]:0"), {.v6_only = true});
    CHECK(socket_option(v6.get(), IPPROTO_IPV6, IPV6_V6ONLY) == 1);
    auto refused = connect_to(endpoint::tcp("127.0.0.1", bound(v6.get()).port()));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == std::errc::connection_refused);
}

TEST_CASE("reuse_port lets sockets share a port, without it the second bind is EADDRINUSE, named in the exception") {
    auto first = listen_socket(endpoint::tcp("127.0.0.1", 0), {.reuse_port = true});
    const auto ep = bound(first.get());
    auto second = try_listen_socket(ep, {.reuse_port = true});
    REQUIRE(second.has_value());
    CHECK(socket_option(second->get(), SOL_SOCKET, SO_REUSEPORT) == 1);
    CHECK(bound(second->get()) == ep);

    auto refused = try_listen_socket(ep);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == std::errc::address_in_use);
    try {
        (void)listen_socket(ep);
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::address_in_use);
        CHECK_THAT(e.what(), Catch::StartsWith("cluster: cannot listen on " + ep.to_string() + ": bind"));
    }
}

TEST_CASE(
    "defer_accept: a connection is accepted with its first bytes, or once silent past the delay, not as it opens") {
    auto plain = listen_socket(endpoint::tcp("127.0.0.1", 0));
    CHECK(socket_option(plain.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT) == 0);
    auto deferred = listen_socket(endpoint::tcp("127.0.0.1", 0), {.defer_accept = std::chrono::seconds(1)});
    CHECK(socket_option(deferred.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT) == 1);
    auto talker = connect_to(bound(deferred.get()));
    auto silent = connect_to(bound(deferred.get()));
    REQUIRE(talker.has_value());
    REQUIRE(silent.has_value());
    // Both handshakes are done, as the clients see it; neither connection is the server's yet.
    CHECK_FALSE(acceptable(deferred.get(), 0));
    REQUIRE(::send(talker->get(), "GET", 3, MSG_NOSIGNAL) == 3);
    REQUIRE(acceptable(deferred.get(), 10'000));
    auto [first, first_peer] = accept_one(deferred.get());
    CHECK(first_peer == bound(talker->get()));
    std::array<char, 8> buf{};
    CHECK(::recv(first.get(), buf.data(), buf.size(), MSG_DONTWAIT) == 3);  // there already
    // The silent one once its second (1 s late) handshake is done: it may still speak.
    REQUIRE(acceptable(deferred.get(), 10'000));
    auto [second, second_peer] = accept_one(deferred.get());
    CHECK(second_peer == bound(silent->get()));
    CHECK(::recv(second.get(), buf.data(), buf.size(), MSG_DONTWAIT) == -1);
    CHECK(errno == EAGAIN);
}

TEST_CASE("defer_accept on a Unix socket, which has no such option, changes nothing") {
    temp_path file("defer");
    auto fd = listen_socket(endpoint::unix_socket(file.path), {.defer_accept = std::chrono::seconds(1)});
    auto client = connect_to(bound(fd.get()));
    REQUIRE(client.has_value());
    CHECK(acceptable(fd.get(), 0));
}

TEST_CASE("listen_socket on a Unix path and on an abstract name") {
    temp_path file("listen");
    auto at_path = listen_socket(endpoint::unix_socket(file.path), {.backlog = 4});
    CHECK(is_socket_file(file.path));
    CHECK(bound(at_path.get()) == endpoint::unix_socket(file.path));
    auto client = connect_to(endpoint::unix_socket(file.path));
    REQUIRE(client.has_value());

    const auto name = endpoint::unix_socket("@cluster-test-endpoint-" + std::to_string(::getpid()));
    auto abstract = listen_socket(name);
    CHECK(bound(abstract.get()) == name);
    CHECK(bound(abstract.get()).to_string() == name.to_string());
    auto abstract_client = connect_to(name);
    REQUIRE(abstract_client.has_value());
    auto taken = try_listen_socket(name);  // no file to replace: in use is in use
    REQUIRE_FALSE(taken.has_value());
    CHECK(taken.error() == std::errc::address_in_use);
}

TEST_CASE("a stale Unix socket file, left by a process that died, is replaced") {
    temp_path file("stale");
    const auto ep = endpoint::unix_socket(file.path);
    {
        unique_fd dead(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(::bind(dead.get(), ep.data(), ep.size()) == 0);
        REQUIRE(::listen(dead.get(), 1) == 0);
    }  // closed without unlinking, as a crash leaves it
    REQUIRE(is_socket_file(file.path));

    auto kept = try_listen_socket(ep, {.replace_stale_unix_socket = false});
    REQUIRE_FALSE(kept.has_value());
    CHECK(kept.error() == std::errc::address_in_use);

    auto fd = listen_socket(ep);
    auto client = connect_to(ep);
    REQUIRE(client.has_value());
    unique_fd accepted(::accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    CHECK(accepted.valid());
}

TEST_CASE("a Unix socket file somebody listens on, or a path that is no socket, is never replaced") {
    temp_path file("live");
    const auto ep = endpoint::unix_socket(file.path);
    auto live = listen_socket(ep);
    try {
        (void)listen_socket(ep);
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::address_in_use);
        CHECK_THAT(e.what(), Catch::Contains(ep.to_string()) && Catch::Contains("a process is listening there"));
    }
    // The live server still owns its file and takes connections.
    auto client = connect_to(ep);
    REQUIRE(client.has_value());
    unique_fd accepted(::accept4(live.get(), nullptr, nullptr, SOCK_CLOEXEC));
    CHECK(accepted.valid());

    temp_path plain("plain");
    unique_fd created(::open(plain.path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    REQUIRE(created.valid());
    try {
        (void)listen_socket(endpoint::unix_socket(plain.path));
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::address_in_use);
        CHECK_THAT(e.what(), Catch::Contains("not a socket"));
    }
    struct stat st {};
    REQUIRE(::lstat(plain.path.c_str(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
}

TEST_CASE(
    "mode: a Unix socket file gets it before it listens, an endpoint with no file gets EINVAL, and nothing leaks") {
    temp_path file("mode");
    const auto ep = endpoint::unix_socket(file.path);
    for (const mode_t mode : {mode_t{0600}, mode_t{0660}, mode_t{0666}}) {
        INFO(std::oct << mode);
        auto fd = listen_socket(ep, {.mode = mode});
        struct stat st {};
        REQUIRE(::lstat(file.path.c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == mode);
        fd.reset();
        ::unlink(file.path.c_str());
    }
    const std::size_t before = support::open_fd_count();
    for (const auto& none : {endpoint::tcp("127.0.0.1", 0), endpoint::unix_socket("@cluster-test-mode")}) {
        INFO(none.to_string());
        auto refused = try_listen_socket(none, {.mode = 0660});
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error() == std::errc::invalid_argument);
        try {
            (void)listen_socket(none, {.mode = 0660});
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK_THAT(e.what(), Catch::Contains("mode") && Catch::Contains("Unix socket path"));
        }
    }
    auto not_a_mode = try_listen_socket(ep, {.mode = 010000});
    REQUIRE_FALSE(not_a_mode.has_value());
    CHECK(not_a_mode.error() == std::errc::invalid_argument);
    CHECK_FALSE(is_socket_file(file.path));
    CHECK(support::open_fd_count() == before);
}

TEST_CASE("socket_file removes the file a socket was bound to, but not a file made at its path since") {
    temp_path file("removal");
    const auto ep = endpoint::unix_socket(file.path);
    {
        auto fd = listen_socket(ep);
        auto made = socket_file::at(ep);
        made.remove();
        CHECK_FALSE(is_socket_file(file.path));
        made.remove();  // once only: nothing left to remove
    }
    auto first = listen_socket(ep);
    auto seen = socket_file::at(ep);
    ::unlink(file.path.c_str());
    auto second = listen_socket(ep);  // another server, on the same path, while the first still listens
    seen.remove();
    CHECK(is_socket_file(file.path));
    auto none = socket_file::at(endpoint::tcp("127.0.0.1", 80));
    none.remove();
}

TEST_CASE("address_hash: one host hashes alike on any port and in any process, different hosts apart") {
    const auto a = endpoint::tcp("127.0.0.1", 1);
    CHECK(a.address_hash() == endpoint::tcp("127.0.0.1", 65535).address_hash());
    // A fixed function of the address bytes (FNV-1a, then a finaliser): every process,
    // every build, every run computes these same numbers.
    CHECK(a.address_hash() == 0xe2b8dcd14d0de18aull);
    CHECK(endpoint::tcp("::1", 80).address_hash() == 0xb55b74000d560088ull);
    CHECK(endpoint::tcp("::ffff:127.0.0.1", 80).address_hash() == a.address_hash());
    CHECK(endpoint::unix_socket("/a").address_hash() != endpoint::unix_socket("/b").address_hash());

    // Neighbouring hosts differ, and spread over a handful of workers.
    std::set<std::uint64_t> hashes;
    std::set<std::uint64_t> workers;
    for (int i = 0; i < 256; ++i) {
        const auto h = endpoint::tcp("10.0.0." + std::to_string(i), 80).address_hash();
        hashes.insert(h);
        if (i % 4 == 0) workers.insert(h % 4);  // hosts that differ only in the high bits
    }
    CHECK(hashes.size() == 256);
    CHECK(workers.size() == 4);
}
