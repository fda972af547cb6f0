// A listening socket's whole life in the primary, with real processes (fork mode) and real
// clients, under every schedule: a worker closes its listener and listens again; two port-0
// listeners in one worker get two ports; once every worker has closed, the socket closes and
// clients are refused, but a dead worker's socket waits for its replacement; after
// disconnect_all() the cluster starts again; and a Unix socket file's path, mode and removal.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/connections.hpp"
#include "support/listener_worker.hpp"
#include "support/temp_dir.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <filesystem>
#include <set>
#include <span>
#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::order;
using support::proto;

namespace {

// The ids that answered `n` connections to `to`, one request each.
task<std::set<unsigned>> served_by_n(endpoint to, int n) {
    std::set<unsigned> ids;
    for (int i = 0; i < n; ++i) ids.insert(co_await support::bounded(support::served_by(to)));
    co_return ids;
}

task<void> until_exit_of(primary<proto>& p, unsigned id) {
    for (;;) {
        const auto e = co_await support::bounded(p.next<exit_event>());
        if (e.worker_id == id) co_return;
    }
}

// What comes on `s` until its end (or a reset), within the tests' wait limit.
task<std::string> rest_of(tcp_stream& s) {
    std::string got;
    std::array<char, 128> buf{};
    for (;;) {
        auto n = co_await s.read_some(std::span(buf)).with_timeout(support::wait_limit);
        INFO("after '" << got << "': " << (n ? "end of stream" : n.error().message()));
        REQUIRE((n || n.error() == std::errc::connection_reset));
        if (!n || *n == 0) co_return got;
        got.append(buf.data(), *n);
    }
}

// TCP_DEFER_ACCEPT of each socket this process, the primary, listens on at `at`.
std::vector<int> defer_accept_on(const std::string& at) {
    std::vector<int> found;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        const int fd = std::stoi(entry.path().filename().string());
        int listening = 0, defer = 0;
        socklen_t len = sizeof listening;
        if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening == 0) continue;
        const auto local = net::local_endpoint(fd);
        if (!local || local->to_string() != at) continue;
        len = sizeof defer;
        REQUIRE(::getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len) == 0);
        found.push_back(defer);
    }
    return found;
}

mode_t mode_of(const std::string& path) {
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("a worker closes its listener and listens again, and once every worker has closed, clients are refused") {
    const schedule how = GENERATE(from_range(std::begin(support::every_schedule), std::end(support::every_schedule)));
    INFO(to_string(how));
    support::with_listener_workers(support::options_for(how), [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        const auto b = co_await support::start_listening(p, 1);
        CHECK(b.port == a.port);
        // a closes and comes back: b kept the socket open, so a joins it again, on its port.
        co_await order(p, a.worker_id, "close 0");
        co_await order(p, a.worker_id, "listen");
        const auto again = co_await support::listening(p);
        CHECK(again.worker_id == a.worker_id);
        CHECK(again.port == a.port);
        co_await order(p, b.worker_id, "close 0");
        const auto alone = co_await served_by_n(where(a), 4);
        CHECK(alone == std::set<unsigned>{a.worker_id});
        // The last listener closes: so does the socket, as in Node.
        co_await order(p, a.worker_id, "close 1");
        const auto refused = co_await support::refusal(where(a));
        CHECK(refused == std::errc::connection_refused);
        // And a listen after that opens a new one.
        co_await order(p, a.worker_id, "listen");
        const auto fresh = co_await support::listening(p);
        const auto served = co_await served_by_n(where(fresh), 2);
        CHECK(served == std::set<unsigned>{a.worker_id});
    });
}

TEST_CASE("port 0: a worker's two listeners get two ports, which another worker's two listeners share") {
    const schedule how = GENERATE(schedule::round_robin, schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    support::with_listener_workers(support::options_for(how), [&](primary<proto>& p) -> task<void> {
        const auto a1 = co_await support::start_listening(p, 1);
        const auto b1 = co_await support::start_listening(p, 1);
        co_await order(p, a1.worker_id, "listen");
        const auto a2 = co_await support::listening(p);
        co_await order(p, b1.worker_id, "listen");
        const auto b2 = co_await support::listening(p);
        CHECK(a2.port != a1.port);
        CHECK(b1.port == a1.port);
        CHECK(b2.port == a2.port);
        const std::vector<support::listen_result> ports{a1, a2};
        for (const auto& at : ports) {
            INFO("port " << at.port);
            const auto ids = co_await served_by_n(where(at), 8);
            CHECK(ids.size() >= 1);
            if (how == schedule::round_robin) CHECK(ids == std::set<unsigned>{a1.worker_id, b1.worker_id});
        }
    });
}

TEST_CASE("a killed or failing worker's sockets stay open: clients wait for its replacement, which serves them") {
    const schedule how = GENERATE(from_range(std::begin(support::every_schedule), std::end(support::every_schedule)));
    const bool killed = GENERATE(true, false);
    INFO(to_string(how) << (killed ? ", SIGKILLed" : ", an exception out of main"));
    auto o = support::options_for(how);
    o.restart.mode = restart_mode::permanent;
    o.restart.initial_delay = 300ms;  // the client below connects well within it
    o.restart.jitter = 0;
    support::with_listener_workers(o, [&](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        if (killed)
            REQUIRE(support::worker_of(p, a.worker_id).kill(SIGKILL).has_value());
        else
            co_await order(p, a.worker_id, "throw");
        co_await until_exit_of(p, a.worker_id);
        auto waiting = co_await support::bounded(support::ask_later(where(a), 'c', "held"));
        const auto next = co_await support::listening(p);
        CHECK(next.worker_id != a.worker_id);
        CHECK(next.port == a.port);
        const unsigned id = co_await support::bounded(support::answer_of(waiting, "held"));
        CHECK(id == next.worker_id);
    });
}

TEST_CASE("a hung worker killed after it read a request it held its answer about: the client sees the end, and the "
          "request goes to no other worker") {
    auto o = support::options_for(schedule::round_robin);
    o.heartbeat_timeout = 200ms;
    o.kill_timeout = 100ms;
    o.restart.mode = restart_mode::permanent;
    o.restart.initial_delay = 0ms;
    o.restart.jitter = 0;
    support::with_listener_workers(o, [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        auto frozen = co_await support::bounded(support::ask_later(where(a), 'c', "freeze"));
        co_await until_exit_of(p, a.worker_id);
        const auto next = co_await support::listening(p);
        CHECK(next.worker_id != a.worker_id);
        // Handed to the replacement, the connection would stay open, its request read.
        const std::string answer = co_await support::bounded(rest_of(frozen));
        CHECK(answer.empty());
        const unsigned id = co_await support::bounded(support::served_by(where(a)));
        CHECK(id == next.worker_id);
    });
}

TEST_CASE("a killed worker that is not replaced takes its sockets with it: clients are refused") {
    const schedule how = GENERATE(schedule::round_robin, schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    support::with_listener_workers(support::options_for(how), [](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        REQUIRE(support::worker_of(p, a.worker_id).kill(SIGKILL).has_value());
        co_await until_exit_of(p, a.worker_id);
        const auto refused = co_await support::refusal(where(a));
        CHECK(refused == std::errc::connection_refused);
    });
}

TEST_CASE(
    "after disconnect_all() the cluster starts again: new workers listen on the old endpoint and are supervised") {
    const schedule how = GENERATE(schedule::round_robin, schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    auto o = support::options_for(how);
    o.restart.mode = restart_mode::permanent;
    o.restart.initial_delay = 10ms;
    support::with_listener_workers(o, [](primary<proto>& p) -> task<void> {
        const auto first = co_await support::start_listening(p, 2);
        const auto before = co_await served_by_n(where(first), 4);
        CHECK(before.size() >= 1);
        co_await support::bounded(p.disconnect_all());
        CHECK_FALSE(p.stopping());
        CHECK(p.workers().empty());
        const auto refused = co_await support::refusal(where(first));
        CHECK(refused == std::errc::connection_refused);

        const auto old_endpoint = support::with_env(support::setting::endpoint, first.local);
        const auto second = co_await support::start_listening(p, 2, old_endpoint);
        CHECK(second.local == first.local);
        const auto after = co_await served_by_n(where(second), 4);
        for (const unsigned id : after) CHECK(before.count(id) == 0);
        // Supervised again: a worker killed now is replaced.
        REQUIRE(support::worker_of(p, second.worker_id).kill(SIGKILL).has_value());
        const auto restart = co_await support::bounded(p.next<restart_scheduled_event>());
        CHECK(restart.worker_id == second.worker_id);
        const auto replaced = co_await support::listening(p);
        CHECK(replaced.local == first.local);
    });
}

TEST_CASE("a relative Unix path is the worker's working directory's, and its socket file gets listen_options::mode") {
    const mode_t mode = GENERATE(mode_t{0600}, mode_t{0666});
    INFO("mode " << std::oct << mode);
    const support::temp_dir dir;
    auto o = support::options_for(schedule::round_robin, "unix:./run/../s.sock");
    o.cwd = dir.str();
    o.env[support::setting::mode] = mode == 0600 ? "600" : "666";
    support::with_listener_workers(o, [&](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        const std::string path = dir.file("s.sock");
        CHECK(a.local == "unix:" + path);
        const auto e = co_await support::bounded(p.next<listening_event>());
        CHECK(e.address == path);
        CHECK(mode_of(path) == mode);
        const auto served = co_await served_by_n(endpoint::unix_socket(path), 2);
        CHECK(served == std::set<unsigned>{a.worker_id});
    });
}

TEST_CASE("listen_options::mode on a TCP endpoint or an abstract name is refused with EINVAL") {
    const std::string at = GENERATE(std::string("127.0.0.1:0"), std::string("unix:@cluster-test-mode"));
    INFO(at);
    auto o = support::options_for(schedule::round_robin, at);
    o.env[support::setting::mode] = "660";
    support::with_listener_workers(o, [](primary<proto>& p) -> task<void> {
        (void)co_await support::fork_worker(p);
        const auto r = (co_await support::bounded(p.next_message<support::listen_result>())).value;
        CHECK(r.error == EINVAL);
        INFO(r.what);
        CHECK(r.what.find("mode") != std::string::npos);
    });
}

TEST_CASE(
    "listen_options::defer_accept is set on every socket the primary opens for it, and its connections are served") {
    const schedule how = GENERATE(schedule::round_robin, schedule::shared, schedule::reuseport);
    INFO(to_string(how));
    auto o = support::options_for(how);
    o.env[support::setting::defer_accept] = "1";
    support::with_listener_workers(o, [how](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 2);
        const auto sockets = defer_accept_on(a.local);
        CHECK(sockets.size() == (how == schedule::reuseport ? 2U : 1U));
        CHECK(sockets == std::vector<int>(sockets.size(), 1));
        const auto served = co_await served_by_n(endpoint::parse(a.local).value(), 4);
        CHECK_FALSE(served.empty());
    });
}

TEST_CASE("a Unix socket file is removed when its last listener closes, and made again by the next") {
    const schedule how = GENERATE(schedule::round_robin, schedule::shared);
    INFO(to_string(how));
    const support::temp_dir dir;
    const std::string path = dir.file("s.sock");
    support::with_listener_workers(support::options_for(how, "unix:" + path), [&](primary<proto>& p) -> task<void> {
        const auto a = co_await support::start_listening(p, 1);
        const auto b = co_await support::start_listening(p, 1);
        co_await order(p, a.worker_id, "close 0");
        CHECK(support::file_exists(path));
        co_await order(p, b.worker_id, "close 0");
        CHECK_FALSE(support::file_exists(path));
        const auto gone = co_await support::refusal(endpoint::unix_socket(path));
        CHECK(gone == std::errc::no_such_file_or_directory);
        co_await order(p, b.worker_id, "listen");
        (void)co_await support::listening(p);
        CHECK(support::file_exists(path));
        const auto served = co_await served_by_n(endpoint::unix_socket(path), 2);
        CHECK(served == std::set<unsigned>{b.worker_id});
    });
}
