// The runtime on its own: a parent forks one echo child per CPU, talks to each over a
// socketpair with co_await, waits for their exits through pidfds, and stops on Ctrl-C.
#include <cluster/cluster.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;

// A child's whole life: echo what arrives until the parent closes its end.
task<void> echo(int fd) {
    char buf[256];
    while (auto n = co_await io::read(fd, buf)) {
        if (*n == 0) co_return;
        auto written = co_await io::write(fd, std::span(buf, *n));
        if (!written) co_return;
    }
}

struct child {
    child_process process;
    unique_fd socket;
};

task<void> ping(child& c, int rounds) {
    auto start = std::chrono::steady_clock::now();
    char reply[64];
    for (int i = 0; i < rounds; ++i) {
        std::string msg = "ping " + std::to_string(i);
        (void)co_await io::write(c.socket.get(), msg);
        (void)co_await io::read(c.socket.get(), reply);
    }
    auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    std::printf("child %d: %d round trips, %.1f us each\n", c.process.pid(), rounds, us / rounds);
}

task<void> parent(std::vector<child>& children) {
    signal_set stop_signals{SIGINT, SIGTERM};
    std::vector<task<void>> pings;
    for (auto& c : children) pings.push_back(ping(c, 10'000));
    // Ctrl-C during the pings ends the demo early; otherwise the pings finish first.
    auto first =
        co_await when_any(when_all(std::move(pings)), [&]() -> task<void> { (void)co_await stop_signals.next(); }());
    if (first.index() == 1) std::printf("interrupted\n");

    for (auto& c : children) c.socket.reset();  // EOF: each child's echo loop ends
    for (auto& c : children) {
        auto status = co_await c.process.wait();
        std::printf("child %d exited: %s\n", c.process.pid(), status ? status->to_string().c_str() : "?");
    }
}

bool asks_for_help(int argc, char** argv) {
    return std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; });
}

int main(int argc, char** argv) {
    if (asks_for_help(argc, argv)) {
        std::printf("usage: %s\n"
                    "  Forks one echo child per CPU, pings each 10000 times over a socketpair, and waits\n"
                    "  for their exits. Ctrl-C ends the pings early.\n",
                    argv[0]);
        return 0;
    }
    unsigned n = std::max(1u, std::thread::hardware_concurrency());
    std::printf("parent %d forking %u children\n", getpid(), n);
    io_context ctx;
    std::vector<child> children;
    for (unsigned i = 0; i < n; ++i) {
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
        unique_fd mine(sv[0]), theirs(sv[1]);
        auto forked = child_process::fork().value();
        if (forked.is_child()) {
            mine.reset();
            for (auto& c : children) c.process.detach();  // siblings are the parent's to reap
            children.clear();
            sync_wait(echo(theirs.get()));
            _exit(0);
        }
        children.push_back({std::move(forked), std::move(mine)});
    }
    ctx.run_until(parent(children));
    return 0;
}
