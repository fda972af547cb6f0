// lifecycle_bench: how fast workers come up — from the first fork() until every worker is
// online (2 and 16 workers, fork and exec mode), from a worker's SIGKILL until its
// replacement is online — each beside Node.js cluster doing the same in the same run — and
// from SIGUSR2 until a binary upgrade's new primary is ready, beside online_2_fork.
#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "report.hpp"

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace bench_types {
struct nothing {};
BOOST_DESCRIBE_STRUCT(nothing, (), ())
}  // namespace bench_types

using proto = protocol<bench_types::nothing>;

namespace {

constexpr int online_2_repeats = 50;
constexpr int online_16_repeats = 20;
constexpr int kills = 200;
constexpr int upgrades = 10;
// Names the port of a primary that upgrade_to_ready_ms() runs, this program run again.
constexpr const char* upgrade_port_env = "LIFECYCLE_BENCH_UPGRADE_PORT";

double ms_since(clock_type::time_point start) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

// Nearest rank: the smallest sample with at least q of them at or below it.
double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::max<std::size_t>(rank, 1) - 1];
}

// A worker that does nothing until it is disconnected.
task<void> idle(worker<proto>& w) {
    while (auto m = co_await w.receive()) {}
}

task<double> bring_up(primary<proto>& p, unsigned n) {
    const auto start = clock_type::now();
    for (unsigned i = 0; i < n; ++i) (void)co_await p.fork();
    for (unsigned i = 0; i < n; ++i) (void)co_await p.next<online_event>();
    const double ms = ms_since(start);
    co_await p.shutdown();
    co_return ms;
}

// Each repetition starts from a fresh primary: nothing of the last one's workers is left.
std::vector<double> online_ms(const std::vector<std::string>& args, start_mode mode, unsigned n, int repeats) {
    std::vector<double> samples;
    for (int r = 0; r < repeats; ++r) {
        primary_options options;
        options.mode = mode;
        primary<proto> p(options, idle, args);
        samples.push_back(sync_wait(bring_up(p, n)));
    }
    return samples;
}

// Two workers up; then, `count` times: SIGKILL one and wait until the restart policy's
// replacement is online.
task<std::vector<double>> crash_cycles(primary<proto>& p, int count) {
    for (int i = 0; i < 2; ++i) (void)co_await p.fork();
    for (int i = 0; i < 2; ++i) (void)co_await p.next<online_event>();
    std::vector<double> samples;
    for (int k = 0; k < count; ++k) {
        const auto start = clock_type::now();
        (void)p.workers().front()->kill(SIGKILL);
        (void)co_await p.next<online_event>();
        samples.push_back(ms_since(start));
    }
    co_await p.shutdown();
    co_return samples;
}

std::vector<double> crash_to_online_ms(const std::vector<std::string>& args) {
    // Node restarts in its exit handler at once: no backoff here either, and no cap.
    primary_options options;
    options.restart.initial_delay = std::chrono::milliseconds(0);
    options.restart.max_restarts = kills + 1;
    options.restart.min_uptime = std::chrono::milliseconds(0);
    primary<proto> p(options, idle, args);
    return sync_wait(crash_cycles(p, kills));
}

// The primary upgrade_to_ready_ms() replaces again and again: 2 workers listening on
// `port`, round-robin; it says "ready <pid>" on stdout once the cluster is ready.
task<void> listen_idle(worker<proto>& w) {
    const auto port = static_cast<std::uint16_t>(std::atoi(std::getenv(upgrade_port_env)));
    auto listener = co_await w.listen(net::endpoint::tcp("127.0.0.1", port));
    co_await idle(w);
}

task<void> upgradable_primary(primary<proto>& p) {
    for (int i = 0; i < 2; ++i) (void)co_await p.fork();
    const bool ready = co_await p.until_ready();
    if (!ready) co_return;
    std::printf("ready %d\n", ::getpid());
    std::fflush(stdout);
    for (;;) (void)co_await p.next_event();
}

// A free port on 127.0.0.1, as the kernel picks one.
std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// The pid in the next line of `from` that `format` (one %d) reads; 0 at its end.
pid_t next_pid(FILE* from, const char* format) {
    char line[256];
    int pid = 0;
    while (std::fgets(line, sizeof line, from))
        if (std::sscanf(line, format, &pid) == 1) return pid;
    return 0;
}

// This program as an upgradable primary; then, `upgrades` times: SIGUSR2 to the primary
// until it says its successor (its 2 workers forked anew, listening) is ready and took over.
std::vector<double> upgrade_to_ready_ms(const char* self) {
    const std::string port = std::to_string(free_port());
    ::setenv(upgrade_port_env, port.c_str(), 1);
    FILE* out = ::popen((std::string("exec ") + self + " 2>&1").c_str(), "r");
    ::unsetenv(upgrade_port_env);
    std::vector<double> samples;
    if (!out) return samples;
    pid_t primary = next_pid(out, "ready %d");
    for (int i = 0; i < upgrades && primary > 0; ++i) {
        const auto start = clock_type::now();
        ::kill(primary, SIGUSR2);
        const pid_t successor = next_pid(out, "cluster: upgrade: primary %d is ready;");
        if (successor > 0) samples.push_back(ms_since(start));
        primary = successor;
    }
    if (primary > 0) ::kill(primary, SIGTERM);
    char rest[256];
    while (std::fgets(rest, sizeof rest, out)) {}  // the pipe ends once the last primary and its workers are gone
    ::pclose(out);
    return samples;
}

struct node_figures {
    double online_2 = 0, online_16 = 0, crash_p50 = 0, crash_p99 = 0;
};

// Node's cluster doing the same, when node is installed; nothing when it is not.
std::optional<node_figures> run_node() {
    if (std::system("command -v node >/dev/null 2>&1") != 0) return std::nullopt;
    const std::string cmd = std::string("node ") + CLUSTER_BENCH_DIR + "/node/lifecycle.js";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return std::nullopt;
    char line[512] = {};
    node_figures f;
    const char* format = "{\"online_2_ms\":%lf,\"online_16_ms\":%lf,\"crash_p50_ms\":%lf,\"crash_p99_ms\":%lf}";
    const bool read = std::fgets(line, sizeof line, p) &&
                      std::sscanf(line, format, &f.online_2, &f.online_16, &f.crash_p50, &f.crash_p99) == 4;
    const int status = ::pclose(p);
    if (!read || status != 0) return std::nullopt;
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    // Exec-mode workers are this program run again.
    if (std::getenv(upgrade_port_env)) return run<proto>(argc, argv, upgradable_primary, listen_idle);
    if (is_worker())
        return run<proto>(
            argc, argv, [](primary<proto>&) -> task<void> { co_return; }, idle);
    if (bench::answered_help(argc, argv,
                             "  From the first fork() to every worker online, and from a worker's SIGKILL to its\n"
                             "  replacement online, beside Node's cluster; one JSON line per figure.\n"))
        return 0;
    const std::vector<std::string> args(argv, argv + argc);
    io_context ctx;

    const auto fork_2 = online_ms(args, start_mode::fork, 2, online_2_repeats);
    const auto fork_16 = online_ms(args, start_mode::fork, 16, online_16_repeats);
    const auto exec_2 = online_ms(args, start_mode::exec, 2, online_2_repeats);
    const auto exec_16 = online_ms(args, start_mode::exec, 16, online_16_repeats);
    const auto crashes = crash_to_online_ms(args);
    const auto upgraded = upgrade_to_ready_ms(argv[0]);
    std::fprintf(stderr, "lifecycle_bench: p50 of %d (2 workers) and %d (16 workers) bring-ups, %d kills\n",
                 online_2_repeats, online_16_repeats, kills);
    const auto node = run_node();
    if (!node) std::fprintf(stderr, "lifecycle_bench: node is not installed (or its run failed): no baselines\n");

    const node_figures n = node.value_or(node_figures{});
    const std::string by = node ? "Node.js cluster: " : "Node.js cluster (not measured, no node): ";
    const std::string reported = "reported beside Node";
    bench::print({"online_2_fork", bench::median(fork_2), "ms", by + "2 workers, first fork() to all 'online', p50",
                  n.online_2, "lower", "<= 1 ms and >= 50x faster than Node"});
    bench::print({"online_16_fork", bench::median(fork_16), "ms", by + "16 workers to all 'online', p50", n.online_16,
                  "lower", reported});
    bench::print({"online_2_exec", bench::median(exec_2), "ms", by + "2 workers to all 'online', p50", n.online_2,
                  "lower", reported});
    bench::print({"online_16_exec", bench::median(exec_16), "ms", by + "16 workers to all 'online', p50", n.online_16,
                  "lower", reported});
    bench::print({"crash_to_online", bench::median(crashes), "ms", by + "SIGKILL to the replacement's 'online', p50",
                  n.crash_p50, "lower", "<= 2 ms p50 and >= 30x faster than Node"});
    bench::print({"crash_to_online_p99", percentile(crashes, 0.99), "ms",
                  by + "SIGKILL to the replacement's 'online', p99", n.crash_p99, "lower", reported});
    if (!upgraded.empty()) {
        const double online_2 = bench::median(fork_2);
        bench::print({"upgrade_to_ready", bench::median(upgraded), "ms",
                      "online_2_fork of this run: 2 workers, first fork() to all 'online', p50", online_2, "lower",
                      "reported beside online_2_fork"});
    } else {
        std::fprintf(stderr, "lifecycle_bench: the upgrades failed: no upgrade_to_ready\n");
    }
}
