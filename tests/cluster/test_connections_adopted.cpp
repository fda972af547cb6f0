// Sockets the primary was handed already listening (Node's listen({fd}), systemd's sockets),
// adopted with primary::adopt(), with real processes and clients: served under every
// schedule, found by name or by address, kept open when nobody listens; never inherited by a
// worker, forked or exec'd; and refused, with the reason and nothing leaked, when the
// descriptor is no listening stream socket.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/connections.hpp"
#include "support/descriptors.hpp"
#include "support/listener_worker.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::order;
using support::proto;

namespace {

// A socket on 127.0.0.1 at a port the kernel picks, as systemd passes one: open across exec.
unique_fd loopback_socket(int type, bool listening, bool reuse_port = false) {
    unique_fd fd(::socket(AF_INET, type, 0));
    REQUIRE(fd.valid());
    const int on = 1;
    if (reuse_port) REQUIRE(::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    if (listening) REQUIRE(::listen(fd.get(), 64) == 0);
    return fd;
}

// Another socket on `address`, in `first`'s SO_REUSEPORT group, listening; with `keep_flag`
// false its SO_REUSEPORT is cleared once it listens, as if it had never set it.
unique_fd twin_of(const endpoint& address, bool keep_flag = true) {
    unique_fd twin(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(twin.valid());
    int on = 1;
    REQUIRE(::setsockopt(twin.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
    REQUIRE(::bind(twin.get(), address.data(), address.size()) == 0);
    REQUIRE(::listen(twin.get(), 64) == 0);
    on = keep_flag ? 1 : 0;
    REQUIRE(::setsockopt(twin.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
    return twin;
}

ino_t inode_of(int fd) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return st.st_ino;
}

// Whether process `pid` has a descriptor for the socket with inode `ino`.
bool holds_socket(pid_t pid, ino_t ino) {
    const std::string wanted = "socket:[" + std::to_string(ino) + "]";
    for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        std::error_code ec;
        if (std::filesystem::read_symlink(entry.path(), ec).string() == wanted) return true;
    }
    return false;
}

// What adopting `fd` says: the error, and the throwing form's message for another like it.
struct refusal {
    std::error_code error;
    std::string what;
};

template <class Make>
refusal adopting(primary<proto>& p, Make make) {
    refusal out;
    auto tried = p.try_adopt(make());
    REQUIRE_FALSE(tried.has_value());
    out.error = tried.error();
    try {
        (void)p.adopt(make());
        FAIL("adopt() did not throw");
    } catch (const std::system_error& e) {
        CHECK(e.code() == out.error);
        out.what = e.what();
    }
    return out;
}

}  // namespace

TEST_CASE("an adopted socket serves every schedule, found by its name or its address, and outlives its listeners") {
    const schedule how = GENERATE(from_range(std::begin(support::every_schedule), std::end(support::every_schedule)));
    INFO(to_string(how));
    support::with_listener_workers(support::options_for(how, "fd:web"), [&](primary<proto>& p) -> task<void> {
        auto fd = loopback_socket(SOCK_STREAM, true, true);
        const endpoint address = local_endpoint(fd.get()).value();
        const endpoint named = p.adopt(std::move(fd), "web");
        CHECK(named == endpoint::inherited("web"));
        CHECK(named.to_string() == "fd:web");

        const auto a = co_await support::start_listening(p, 1);
        const auto by_address = support::with_env(support::setting::endpoint, address.to_string());
        const auto b = co_await support::start_listening(p, 1, by_address);
        CHECK(a.local == address.to_string());
        CHECK(b.local == address.to_string());
        // shared: whichever accepts first; sticky: one client address; custom: the first (options_for).
        const bool spread = how != schedule::shared && how != schedule::sticky && how != schedule::custom;
        const auto ids = co_await support::served_by_workers(address, 8, spread ? 2 : 1);
        if (spread) CHECK(ids == std::set<unsigned>{a.worker_id, b.worker_id});

        // Nobody listens: the adopted socket still does, and a client waits for the next listener.
        co_await order(p, a.worker_id, "close 0");
        co_await order(p, b.worker_id, "close 0");
        auto waiting = co_await support::bounded(support::ask_later(address, 'c', "waited"));
        co_await order(p, a.worker_id, "listen");
        (void)co_await support::listening(p);
        const unsigned id = co_await support::bounded(support::answer_of(waiting, "waited"));
        CHECK(id == a.worker_id);
    });
}

TEST_CASE("an adopted socket is close-on-exec, and no worker, forked or exec'd, holds it unless handed it") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO((mode == start_mode::fork ? "fork" : "exec"));
    auto o = support::scripted(mode, support::behaviour::serve_lines);
    o.restart.mode = restart_mode::temporary;
    o.env[support::setting::endpoint] = "fd:web";
    o.env[support::setting::schedule] = "round_robin";
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        auto fd = loopback_socket(SOCK_STREAM, true);
        const int number = fd.get();
        const ino_t ino = inode_of(number);
        const endpoint address = local_endpoint(number).value();
        (void)p.adopt(std::move(fd), "web");
        CHECK((::fcntl(number, F_GETFD) & FD_CLOEXEC) != 0);
        const auto at = co_await support::start_listening(p, 2);
        CHECK(at.local == address.to_string());
        for (auto* h : p.workers()) {
            INFO("worker " << h->id());
            CHECK_FALSE(holds_socket(h->pid(), ino));
        }
        const unsigned id = co_await support::bounded(support::served_by(address));
        CHECK(id >= 1);
    });
}

TEST_CASE("adopt() refuses a descriptor that is no listening stream socket, saying what it is, and leaks nothing") {
    support::with_listener_workers(support::options_for(schedule::round_robin), [](primary<proto>& p) -> task<void> {
        const std::size_t before = support::open_fd_count();
        const auto not_listening = adopting(p, [] { return loopback_socket(SOCK_STREAM, false); });
        CHECK(not_listening.error == std::errc::invalid_argument);
        CHECK_THAT(not_listening.what, Catch::Contains("cannot adopt fd") && Catch::Contains("not listening"));
        const auto datagram = adopting(p, [] { return loopback_socket(SOCK_DGRAM, false); });
        CHECK(datagram.error == std::errc::wrong_protocol_type);
        CHECK_THAT(datagram.what, Catch::Contains("datagram"));
        const auto pipe_end = adopting(p, [] {
            auto ends = support::make_pipe();
            return std::move(ends[0]);
        });
        CHECK(pipe_end.error == std::errc::not_a_socket);
        CHECK_THAT(pipe_end.what, Catch::Contains("not a socket"));
        const auto closed = adopting(p, [] { return unique_fd(1000); });
        CHECK(closed.error == std::errc::bad_file_descriptor);
        CHECK(support::open_fd_count() == before);
        co_return;
    });
}

TEST_CASE("adopt() refuses a name or an address taken, and a listen on a name nothing was adopted as is EBADF") {
    auto o = support::options_for(schedule::round_robin, "fd:nothing");
    support::with_listener_workers(o, [](primary<proto>& p) -> task<void> {
        auto first = loopback_socket(SOCK_STREAM, true, true);
        const endpoint address = local_endpoint(first.get()).value();
        (void)p.adopt(std::move(first), "web");
        auto again = p.try_adopt(loopback_socket(SOCK_STREAM, true), "web");
        REQUIRE_FALSE(again.has_value());
        CHECK(again.error() == std::errc::file_exists);
        auto invalid = p.try_adopt(loopback_socket(SOCK_STREAM, true), "a:b");
        REQUIRE_FALSE(invalid.has_value());
        CHECK(invalid.error() == endpoint_errc::invalid_name);
        // A second socket on the same address that does not say SO_REUSEPORT: no spare.
        auto same_address = p.try_adopt(twin_of(address, false), "twin");
        REQUIRE_FALSE(same_address.has_value());
        CHECK(same_address.error() == std::errc::address_in_use);

        (void)co_await support::fork_worker(p);
        const auto r = (co_await support::bounded(p.next_message<support::listen_result>())).value;
        CHECK(r.error == EBADF);
        INFO(r.what);
        CHECK(r.what.find("no socket was adopted as \"nothing\"") != std::string::npos);
    });
}

// What a binary upgrade hands its successor under reuseport: every slot's socket on one address.
TEST_CASE("a second socket adopted on an address, both with SO_REUSEPORT, is a spare that a slot or the primary "
          "accepts on, and nothing queued on it waits") {
    struct variation {
        schedule how;
        std::size_t workers;
    };
    const variation v = GENERATE(variation{schedule::reuseport, 2}, variation{schedule::reuseport, 1},
                                 variation{schedule::round_robin, 2}, variation{schedule::shared, 2});
    const schedule how = v.how;
    const std::size_t workers = v.workers;
    INFO(to_string(how) << ", " << workers << " workers");
    support::with_listener_workers(support::options_for(how, "fd:web"), [&](primary<proto>& p) -> task<void> {
        auto first = loopback_socket(SOCK_STREAM, true, true);
        const endpoint address = local_endpoint(first.get()).value();
        auto twin = twin_of(address);
        const std::set<ino_t> sockets{inode_of(first.get()), inode_of(twin.get())};
        (void)p.adopt(std::move(first), "web");
        CHECK(p.adopt(std::move(twin), "web.1") == endpoint::inherited("web.1"));

        // Before anyone listens: the kernel spreads them over both sockets.
        constexpr int clients = 16;
        std::vector<tcp_stream> waiting;
        for (int i = 0; i < clients; ++i)
            waiting.push_back(co_await support::bounded(support::ask_later(address, 'c', "w" + std::to_string(i))));
        (void)co_await support::start_listening(p, workers);
        for (int i = 0; i < clients; ++i) {
            const unsigned id = co_await support::bounded(support::answer_of(waiting[i], "w" + std::to_string(i)));
            CHECK(id >= 1);
        }
        // One at a time, while the workers wait: one the primary hands over is not left waiting.
        for (int i = 0; i < clients; ++i) CHECK(co_await support::bounded(support::served_by(address)) >= 1);
        std::set<ino_t> held;
        for (auto* h : p.workers())
            for (const ino_t ino : sockets)
                if (holds_socket(h->pid(), ino)) held.insert(ino);
        // reuseport: each slot accepts on a socket of its own, the spare included if there is a slot for it.
        if (how == schedule::reuseport) CHECK(held.size() == workers);
        if (how == schedule::shared) CHECK(held.size() == 1);
        if (how == schedule::round_robin) CHECK(held.empty());
    });
}

TEST_CASE("reuseport on an adopted socket without SO_REUSEPORT is refused with EINVAL, saying so") {
    support::with_listener_workers(
        support::options_for(schedule::reuseport, "fd:web"), [](primary<proto>& p) -> task<void> {
            (void)p.adopt(loopback_socket(SOCK_STREAM, true), "web");
            (void)co_await support::fork_worker(p);
            const auto r = (co_await support::bounded(p.next_message<support::listen_result>())).value;
            CHECK(r.error == EINVAL);
            INFO(r.what);
            CHECK(r.what.find("SO_REUSEPORT") != std::string::npos);
        });
}
