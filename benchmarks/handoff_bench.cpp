// handoff_bench: what the round-robin hop costs the primary — its CPU time per connection it
// accepts and hands to a worker (2 workers, schedule::round_robin) — beside the least any
// server pays for a connection, accept4 + close in a plain loop, under the same clients in the
// same run. CPU time, not wall time: it does not depend on how the machine schedules.
#include <cluster/cluster.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "cpu_time.hpp"
#include "report.hpp"

using namespace cluster;

using proto = protocol<>;  // the workers take no messages

namespace {

constexpr int connections = 20'000;
constexpr int clients = 4;  // processes, one connection in flight each
constexpr int repeats = 5;

// Each client connects, waits for the server's close (so one connection is in flight per
// client, and none waits in a full backlog), and connects again. Holds `done` open until it ends.
std::vector<pid_t> run_clients(std::uint16_t port, int done_write_end) {
    std::vector<pid_t> pids;
    for (int c = 0; c < clients; ++c) {
        if (const pid_t pid = ::fork(); pid != 0) {
            pids.push_back(pid);
            continue;
        }
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(port);
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        for (int i = 0; i < connections / clients; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) _exit(1);
            char byte;
            while (::read(fd, &byte, 1) > 0) {}
            ::close(fd);
        }
        _exit(0);
    }
    ::close(done_write_end);
    return pids;
}

// Each by its pid: the primary's workers are this process's children too.
bool clients_succeeded(const std::vector<pid_t>& pids) {
    bool ok = true;
    for (const pid_t pid : pids) {
        int status = 0;
        ok = ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 && ok;
    }
    return ok;
}

// The floor: this process accepts and closes every connection, nothing else.
double accept_close_us() {
    auto listening = net::listen_socket(endpoint::tcp("127.0.0.1", 0));
    const auto port = net::local_endpoint(listening.get())->port();
    int done[2];
    if (::pipe2(done, O_CLOEXEC) != 0) std::abort();
    const auto pids = run_clients(port, done[1]);
    const double start = bench::own_cpu_seconds();
    for (int i = 0; i < connections; ++i) {
        const int fd = ::accept4(listening.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) std::abort();
        ::close(fd);
    }
    const double used_us = (bench::own_cpu_seconds() - start) * 1e6;
    ::close(done[0]);
    if (!clients_succeeded(pids)) std::abort();
    return used_us / connections;
}

// A worker closes each connection it is handed at once.
task<void> close_each(worker<proto>& w) {
    auto listener = co_await w.listen(endpoint::tcp("127.0.0.1", 0), net::schedule::round_robin);
    for (;;) {
        auto client = co_await listener.accept();
        if (!client) co_return;
    }
}

task<double> primary_cpu_per_connection(primary<proto>& p) {
    for (int i = 0; i < 2; ++i) (void)co_await p.fork();
    std::uint16_t port = 0;
    for (int i = 0; i < 2; ++i) port = (co_await p.next<listening_event>()).port;
    int done[2];
    if (::pipe2(done, O_CLOEXEC) != 0) std::abort();
    const auto pids = run_clients(port, done[1]);
    const double start = bench::own_cpu_seconds();
    char byte;
    (void)co_await io::read(done[0], std::span(&byte, 1));  // EOF: every client has ended
    const double used_us = (bench::own_cpu_seconds() - start) * 1e6;
    ::close(done[0]);
    if (!clients_succeeded(pids)) std::abort();
    co_await p.shutdown();
    co_return used_us / connections;
}

double primary_us() {
    io_context ctx;
    primary_options options;
    options.restart.max_restarts = 0;
    primary<proto> p(options, close_each);
    return ctx.run_until(primary_cpu_per_connection(p));
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "The primary's CPU time per connection handed round-robin to 2 workers, beside\n"
                             "accept4 + close in a plain loop, under the same 4 clients; median of 5.\n"))
        return 0;
    std::vector<double> floor, hop;
    for (int r = 0; r < repeats; ++r) {
        floor.push_back(accept_close_us());
        hop.push_back(primary_us());
    }
    bench::print({"primary_us_per_conn", bench::median(hop), "us", "accept4 + close in a plain loop",
                  bench::median(floor), "lower", "ratio <= 2"});
}
