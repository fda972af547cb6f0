// What the lifecycle tests' workers do, shared by fork mode (the test binary) and exec mode
// (fixtures/cluster_worker_fixture.cpp): the protocol, and behaviours picked by environment.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <boost/describe.hpp>

#include <cluster/cluster.hpp>

#include "support.hpp"

namespace cluster_fixture {

// Worker to primary: sent once, so the primary sees a message event between online and disconnect.
struct hello {
    std::uint32_t worker_id = 0;
};
BOOST_DESCRIBE_STRUCT(hello, (), (worker_id))

// Worker to primary: who and where the worker is, as it sees itself.
struct identity {
    bool primary = false;
    bool worker = false;
    std::uint32_t worker_id = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::string tag;  // the tag_env variable
    std::string exe;  // /proc/self/exe: which program runs the worker
};
BOOST_DESCRIBE_STRUCT(identity, (), (primary, worker, worker_id, uid, gid, tag, exe))

// Worker to primary: the port its listening socket got, to compare with the listening event.
struct bound_port {
    std::uint16_t port = 0;
};
BOOST_DESCRIBE_STRUCT(bound_port, (), (port))

using proto = cluster::protocol<hello, identity, bound_port>;

// The environment both modes pass through primary_options::env.
inline constexpr const char* behaviour_env = "CLUSTER_TEST_BEHAVIOUR";
inline constexpr const char* marker_env = "CLUSTER_TEST_MARKER";  // a file the worker writes when its code ends
inline constexpr const char* tag_env = "CLUSTER_TEST_TAG";

inline constexpr std::string_view finished_mark = "receive() ended";

// What chatty workers print: numbered lines on both streams, then a line without a newline.
inline constexpr int chatty_out_lines = 2000;
inline constexpr int chatty_err_lines = 200;
inline constexpr std::string_view chatty_tail = "tail without a newline";
inline std::string chatty_line(std::string_view stream, int i) { return std::string(stream) + " " + std::to_string(i); }

namespace behaviour {
inline constexpr const char* hello_then_disconnect = "hello_then_disconnect";
inline constexpr const char* hello_then_return = "hello_then_return";
inline constexpr const char* wait_for_disconnect = "wait_for_disconnect";
inline constexpr const char* leave_then_wait = "leave_then_wait";
inline constexpr const char* throw_at_once = "throw_at_once";
inline constexpr const char* ignore_disconnect = "ignore_disconnect";
inline constexpr const char* report_identity = "report_identity";
inline constexpr const char* listen = "listen";
inline constexpr const char* chatty = "chatty";
}  // namespace behaviour

namespace detail {

inline std::string env_or_empty(const char* name) {
    const char* value = std::getenv(name);
    return value ? value : "";
}

inline std::string self_exe() {
    char path[PATH_MAX];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path);
    return n > 0 ? std::string(path, static_cast<std::size_t>(n)) : std::string();
}

inline void check(const cluster::result<void>& r, const char* what) {
    if (!r) throw std::system_error(r.error(), what);
}

template <class T>
cluster::task<void> send(cluster::worker<proto>& w, const T& msg) {
    auto sent = co_await w.send(msg);
    check(sent, "send");
}

// Lets the test see that the worker's code went on after receive() ended.
inline void write_marker() {
    const std::string path = env_or_empty(marker_env);
    if (path.empty()) return;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::system_error(errno, std::system_category(), "open " + path);
    const bool whole =
        ::write(fd, finished_mark.data(), finished_mark.size()) == static_cast<ssize_t>(finished_mark.size());
    ::close(fd);
    if (!whole) throw std::runtime_error("short write to " + path);
}

inline cluster::task<void> say_hello(cluster::worker<proto>& w) {
    const hello h{w.id()};
    co_await send(w, h);
}

inline cluster::task<void> drain_until_disconnected(cluster::worker<proto>& w) {
    while (auto m = co_await w.receive()) {}
    write_marker();
}

}  // namespace detail

inline cluster::task<void> hello_then_disconnect(cluster::worker<proto>& w) {
    co_await detail::say_hello(w);
    auto left = co_await w.disconnect();
    detail::check(left, "disconnect");
}

inline cluster::task<void> hello_then_return(cluster::worker<proto>& w) { co_await detail::say_hello(w); }

inline cluster::task<void> wait_for_disconnect(cluster::worker<proto>& w) {
    co_await detail::drain_until_disconnected(w);
}

// Leaving on its own must end its receive() too.
inline cluster::task<void> leave_then_wait(cluster::worker<proto>& w) {
    auto left = co_await w.disconnect();
    detail::check(left, "disconnect");
    co_await detail::drain_until_disconnected(w);
}

inline cluster::task<void> throw_at_once(cluster::worker<proto>&) {
    throw std::runtime_error("thrown on purpose by the test's worker");
    co_return;
}

// Goes on with its work whatever the primary asks: only a signal ends it.
inline cluster::task<void> ignore_disconnect(cluster::worker<proto>&) {
    (void)co_await cluster::io::sleep_for(std::chrono::hours(1));
}

inline cluster::task<void> report_identity(cluster::worker<proto>& w) {
    const identity me{
        cluster::is_primary(),         cluster::is_worker(), cluster::this_worker_id(), ::getuid(), ::getgid(),
        detail::env_or_empty(tag_env), detail::self_exe()};
    co_await detail::send(w, me);
}

// Listens until disconnected, so the primary can connect to what was announced.
inline cluster::task<void> listen(cluster::worker<proto>& w) {
    const auto listener = test_support::tcp_listener();
    auto announced = co_await w.announce_listening(listener.get());
    detail::check(announced, "announce_listening");
    const bound_port port{ntohs(test_support::local_address(listener.get()).sin_port)};
    co_await detail::send(w, port);
    co_await detail::drain_until_disconnected(w);
}

inline cluster::task<void> chatty(cluster::worker<proto>&) {
    for (int i = 0; i < chatty_out_lines; ++i) std::printf("%s\n", chatty_line("out", i).c_str());
    for (int i = 0; i < chatty_err_lines; ++i) std::fprintf(stderr, "%s\n", chatty_line("err", i).c_str());
    std::printf("%.*s", static_cast<int>(chatty_tail.size()), chatty_tail.data());
    co_return;
}

// worker_main for both modes: runs the behaviour named by behaviour_env.
inline cluster::task<void> worker_main(cluster::worker<proto>& w) {
    using behaviour_fn = cluster::task<void> (*)(cluster::worker<proto>&);
    static constexpr std::pair<std::string_view, behaviour_fn> behaviours[] = {
        {behaviour::hello_then_disconnect, hello_then_disconnect},
        {behaviour::hello_then_return, hello_then_return},
        {behaviour::wait_for_disconnect, wait_for_disconnect},
        {behaviour::leave_then_wait, leave_then_wait},
        {behaviour::throw_at_once, throw_at_once},
        {behaviour::ignore_disconnect, ignore_disconnect},
        {behaviour::report_identity, report_identity},
        {behaviour::listen, listen},
        {behaviour::chatty, chatty},
    };
    const std::string name = detail::env_or_empty(behaviour_env);
    for (const auto& [known, run] : behaviours)
        if (known == name) co_return co_await run(w);
    throw std::invalid_argument("no worker behaviour named '" + name + "' (set " + behaviour_env + ")");
}

}  // namespace cluster_fixture
