// scale_bench: what a cluster costs as it grows — for 2, 16, 64 and 256 fork-mode workers: the
// time to all online, the idle primary's CPU with heartbeats on, broadcast's deliveries per
// second, each worker's PSS and the primary's RSS — each beside plain syscalls doing the same in
// the same run — and how each grows per worker from 16 to 256 workers. (lifecycle_bench sets the
// online time of 2 and 16 workers beside Node's cluster.)
#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "blocking_io.hpp"
#include "report.hpp"

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace bench_types {

// 64 bytes on the wire: what every broadcast carries.
struct note {
    std::array<std::uint8_t, 64> bytes{};
};
BOOST_DESCRIBE_STRUCT(note, (), (bytes))

// To every worker: broadcast `count` notes (the one worker with `broadcasts` set), or expect them.
struct round_start {
    std::uint64_t count = 0;
    bool broadcasts = false;
};
BOOST_DESCRIBE_STRUCT(round_start, (), (count, broadcasts))

// To the primary: every note of the round arrived.
struct round_done {
    std::uint64_t received = 0;
};
BOOST_DESCRIBE_STRUCT(round_done, (), (received))

}  // namespace bench_types

using namespace bench_types;
using proto = protocol<note, round_start, round_done>;

namespace {

constexpr std::array<unsigned, 4> sizes{2, 16, 64, 256};
// Two heartbeat intervals of the default heartbeat_timeout (30 s, a beat every 7.5 s): every
// worker beats twice in the window, whenever it started.
constexpr std::chrono::seconds idle_window{15};
// Notes delivered per broadcast measurement, whatever the size: count × (workers - 1).
constexpr std::uint64_t deliveries = 1u << 20;
// Broadcast rounds measured after the first, whose median is the figure.
constexpr int broadcast_rounds = 5;
// A frame's header and the note: what one delivery puts on a socket.
constexpr std::size_t frame_bytes = 24 + 64;

double ms_since(clock_type::time_point start) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - start).count();
}

double process_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// A "Name:   123 kB" line of a /proc file, in KiB; 0 if there is none.
double proc_kib(const std::string& path, const std::string& name) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line))
        if (line.starts_with(name + ":")) return std::strtod(line.c_str() + name.size() + 1, nullptr);
    return 0;
}

double pss_kib(pid_t pid) { return proc_kib("/proc/" + std::to_string(pid) + "/smaps_rollup", "Pss"); }

double mean_pss_kib(const std::vector<pid_t>& pids) {
    double sum = 0;
    for (pid_t pid : pids) sum += pss_kib(pid);
    return sum / static_cast<double>(pids.size());
}

std::size_t open_fds() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d)) ++n;
        ::closedir(d);
    }
    return n - 3;  // ".", ".." and the directory's own fd
}

// One size's raw numbers, from the process that measured them.
struct sample {
    double online_ms, fork_loop_ms;
    double idle_cpu;
    double broadcast_rate, relay_rate;
    double pss_kib, bare_pss_kib;
    double rss_kib, rss_before_kib;
};

// ---- the baselines: plain syscalls ----

// A child on one end of a fresh socketpair, running body(fd); the parent keeps the other end.
template <class Body>
std::pair<pid_t, unique_fd> plain_child(Body body) {
    int s[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s) != 0) std::abort();
    const pid_t pid = ::fork();
    if (pid < 0) std::abort();
    if (pid == 0) {
        ::close(s[0]);
        body(s[1]);
        ::_exit(0);
    }
    ::close(s[1]);
    return {pid, unique_fd(s[0])};
}

void reap(std::vector<std::pair<pid_t, unique_fd>>& children) {
    for (auto& [pid, fd] : children) fd.reset();
    for (auto& [pid, fd] : children) ::waitpid(pid, nullptr, 0);
    children.clear();
}

// What online costs at the least: fork() and a socketpair per worker, each child saying it
// runs. Then each bare child's PSS: a process forked from this one that does nothing.
void fork_loop(unsigned n, sample& s) {
    std::vector<std::pair<pid_t, unique_fd>> children;
    const auto start = clock_type::now();
    for (unsigned i = 0; i < n; ++i)
        children.push_back(plain_child([](int fd) {
            char up = 1;
            (void)bench::write_full(fd, &up, 1);
            (void)bench::read_full(fd, &up, 1);  // until the parent closes its end
        }));
    for (auto& [pid, fd] : children)
        if (char up; !bench::read_full(fd.get(), &up, 1)) std::abort();
    s.fork_loop_ms = ms_since(start);
    std::vector<pid_t> pids;
    for (auto& [pid, fd] : children) pids.push_back(pid);
    s.bare_pss_kib = mean_pss_kib(pids);
    reap(children);
}

// Broadcast's path with plain writes: one child sends `count` frames to this process, which
// writes what it reads to each of `receivers` children, which count the bytes and say when
// they have them all. Reads and writes take whatever is there, up to 64 KiB, as the channels do.
double relay_rate(unsigned receivers, std::uint64_t count) {
    const std::size_t total = count * frame_bytes;
    std::vector<std::pair<pid_t, unique_fd>> children;
    for (unsigned i = 0; i < receivers; ++i)
        children.push_back(plain_child([total](int fd) {
            std::vector<char> buf(64 * 1024);
            std::size_t got = 0;
            while (got < total) {
                const ssize_t r = ::read(fd, buf.data(), buf.size());
                if (r <= 0) return;
                got += static_cast<std::size_t>(r);
            }
            char all = 1;
            (void)bench::write_full(fd, &all, 1);
        }));
    children.push_back(plain_child([total](int fd) {
        char go = 0;
        if (!bench::read_full(fd, &go, 1)) return;
        std::vector<char> frames(total, 'x');
        for (std::size_t off = 0; off < total; off += 64 * 1024)
            if (!bench::write_full(fd, frames.data() + off, std::min<std::size_t>(64 * 1024, total - off))) return;
    }));
    const int sender = children.back().second.get();
    std::vector<char> buf(64 * 1024);
    const auto start = clock_type::now();
    char go = 1;
    if (!bench::write_full(sender, &go, 1)) std::abort();
    for (std::size_t moved = 0; moved < total;) {
        const ssize_t r = ::read(sender, buf.data(), buf.size());
        if (r <= 0) std::abort();
        for (unsigned i = 0; i < receivers; ++i)
            if (!bench::write_full(children[i].second.get(), buf.data(), static_cast<std::size_t>(r))) std::abort();
        moved += static_cast<std::size_t>(r);
    }
    for (unsigned i = 0; i < receivers; ++i)
        if (char all; !bench::read_full(children[i].second.get(), &all, 1)) std::abort();
    const double seconds = ms_since(start) / 1000;
    reap(children);
    return static_cast<double>(count * receivers) / seconds;
}

// ---- the cluster ----

// Idle until a round starts: then it broadcasts, or counts the notes and says when it has them all.
task<void> scale_worker(worker<proto>& w) {
    std::uint64_t expected = 0, received = 0;
    const note n{};
    while (auto m = co_await w.receive()) {
        if (auto* r = m->get_if<round_start>()) {
            expected = r->count;
            received = 0;
            if (!r->broadcasts) continue;
            for (std::uint64_t i = 0; i < r->count; ++i) {
                auto sent = co_await w.broadcast(n);
                if (!sent) co_return;
            }
        } else if (m->is<note>() && ++received == expected) {
            const round_done done{received};
            auto sent = co_await w.send(done);
            if (!sent) co_return;
        }
    }
}

task<void> bring_up(primary<proto>& p, unsigned n, sample& s) {
    const auto start = clock_type::now();
    for (unsigned i = 0; i < n; ++i) (void)co_await p.fork();
    for (unsigned i = 0; i < n; ++i) (void)co_await p.next<online_event>();
    s.online_ms = ms_since(start);
}

// The first worker broadcasts `count` notes; the others each say when all have arrived.
task<double> broadcast_rate(primary<proto>& p, std::uint64_t count) {
    const auto workers = p.workers();
    const auto start = clock_type::now();
    for (std::size_t i = workers.size(); i-- > 0;) {
        const round_start r{count, i == 0};
        auto sent = co_await workers[i]->send(r);
        if (!sent) std::abort();
    }
    for (std::size_t i = 1; i < workers.size(); ++i) (void)co_await p.next_message<round_done>();
    co_return static_cast<double>(count * (workers.size() - 1)) / (ms_since(start) / 1000);
}

task<void> measure_cluster(primary<proto>& p, unsigned n, sample& s) {
    co_await bring_up(p, n, s);
    const double cpu_before = process_cpu_seconds();
    (void)co_await io::sleep_for(idle_window);
    s.idle_cpu = (process_cpu_seconds() - cpu_before) / static_cast<double>(idle_window.count());
    std::vector<pid_t> pids;
    for (auto* h : p.workers()) pids.push_back(h->pid());
    s.pss_kib = mean_pss_kib(pids);
    s.rss_kib = proc_kib("/proc/self/status", "VmRSS");
    std::fprintf(stderr, "scale_bench: %u workers: the primary holds %zu fds\n", n, open_fds());
    // The first round after the workers start pays for their first messages once (each
    // worker's buffers, the pages it touches for the first time after fork, the primary's
    // queue to it): that is reported apart, and the figure is the median of the rounds after.
    const double first = co_await broadcast_rate(p, deliveries / (n - 1));
    std::vector<double> rates;
    for (int i = 0; i < broadcast_rounds; ++i) rates.push_back(co_await broadcast_rate(p, deliveries / (n - 1)));
    s.broadcast_rate = bench::median(rates);
    std::fprintf(stderr, "scale_bench: %u workers: broadcast's first round, %.3g deliveries/s; the next %d, %.3g\n", n,
                 first, broadcast_rounds, s.broadcast_rate);
    co_await p.shutdown();
}

sample measure(unsigned n) {
    sample s{};
    fork_loop(n, s);
    s.relay_rate = relay_rate(n - 1, deliveries / (n - 1));
    s.rss_before_kib = proc_kib("/proc/self/status", "VmRSS");
    io_context ctx;
    primary<proto> p(primary_options{}, scale_worker);
    sync_wait(measure_cluster(p, n, s));
    return s;
}

// Each size in a process of its own, forked before any of it: what one size allocated is
// not in the next one's RSS, nor its workers' PSS.
sample measure_apart(unsigned n) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) std::abort();
    const pid_t pid = ::fork();
    if (pid < 0) std::abort();
    if (pid == 0) {
        ::close(out[0]);
        const sample s = measure(n);
        ::_exit(bench::write_full(out[1], &s, sizeof s) ? 0 : 1);
    }
    ::close(out[1]);
    sample s{};
    const bool read = bench::read_full(out[0], &s, sizeof s);
    ::close(out[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!read || !WIFEXITED(status) || WEXITSTATUS(status) != 0) std::abort();
    return s;
}

void print_size(unsigned n, const sample& s) {
    const std::string count = std::to_string(n);
    const std::string workers = count + " workers";
    bench::print({"online_" + count, s.online_ms, "ms",
                  "fork() + socketpair per child, " + workers + ", until each child wrote a byte", s.fork_loop_ms,
                  "lower", "reported beside the fork loop"});
    // The bound is absolute: a hundredth of a core, whatever the count.
    bench::print({"idle_primary_cpu_" + count, s.idle_cpu, "cores",
                  "1% of a core (the bound); heartbeats every 7.5 s (heartbeat_timeout 30 s)", 0.01, "lower",
                  "ratio <= 1"});
    bench::print({"broadcast_" + count, s.broadcast_rate, "deliveries/s",
                  "one child's 88-byte frames through a relay, plain read and write to " + std::to_string(n - 1) +
                      " socketpairs",
                  s.relay_rate, "higher", "reported beside the plain relay"});
    bench::print({"worker_pss_" + count, s.pss_kib, "KiB", "PSS of a bare child forked " + count + " times",
                  s.bare_pss_kib, "lower", "reported beside a bare fork"});
    bench::print({"primary_rss_" + count, s.rss_kib, "KiB", "the same process's RSS before its primary",
                  s.rss_before_kib, "lower", "reported beside the process before"});
}

// How a cost per worker at 256 workers compares with the same at 16: 1 is flat.
void print_growth(const std::string& name, double at_16, double at_256, const std::string& unit,
                  const std::string& better, const std::string& target) {
    bench::print({name + "_growth_256_over_16", at_256, unit, name + " at 16 workers, the same per worker", at_16,
                  better, target});
}

void print_growth(const sample& s16, const sample& s256) {
    print_growth("online", s16.online_ms / 16, s256.online_ms / 256, "ms per worker", "lower", "ratio <= 1.5");
    print_growth("idle_primary_cpu", s16.idle_cpu / 16, s256.idle_cpu / 256, "cores per worker", "lower",
                 "ratio <= 1.5");
    print_growth("broadcast", s16.broadcast_rate, s256.broadcast_rate, "deliveries/s", "higher", "ratio >= 0.67");
    print_growth("worker_pss", s16.pss_kib, s256.pss_kib, "KiB per worker", "lower", "ratio <= 1.5");
    print_growth("primary_rss", (s16.rss_kib - s16.rss_before_kib) / 16, (s256.rss_kib - s256.rss_before_kib) / 256,
                 "KiB per worker", "lower", "ratio <= 1.5");
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "  For 2, 16, 64 and 256 fork-mode workers: time to all online, the idle primary's CPU,\n"
                             "  broadcast deliveries per second, each worker's PSS and the primary's RSS, each beside\n"
                             "  plain syscalls; and each one's growth per worker from 16 to 256. One JSON line per\n"
                             "  figure; about 80 s.\n"))
        return 0;
    std::vector<sample> samples;
    for (unsigned n : sizes) {
        std::fprintf(stderr, "scale_bench: %u workers\n", n);
        samples.push_back(measure_apart(n));
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) print_size(sizes[i], samples[i]);
    print_growth(samples[1], samples[3]);
}
