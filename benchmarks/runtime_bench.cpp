// runtime_bench: a 64-byte ping-pong between two processes over a socketpair with
// co_await read/write, beside the same ping-pong with blocking read/write; and the cost
// of one co_await of a task that completes at once.
#include <cluster/cluster.hpp>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "blocking_io.hpp"
#include "report.hpp"

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int rounds = 20'000;
constexpr int repeats = 7;
using message = std::array<char, 64>;

using bench::read_full;

// The echo side is always plain blocking I/O, so both measurements share it and differ
// only in how the measuring side waits.
[[noreturn]] void echo_forever(int fd) {
    message m;
    while (read_full(fd, m.data(), m.size()))
        if (::write(fd, m.data(), m.size()) != static_cast<ssize_t>(m.size())) break;
    _exit(0);
}

double raw_rtt_ns(int fd) {
    message m{};
    auto start = clock_type::now();
    for (int i = 0; i < rounds; ++i) {
        if (::write(fd, m.data(), m.size()) != static_cast<ssize_t>(m.size()) || !read_full(fd, m.data(), m.size()))
            std::abort();
    }
    return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / rounds;
}

task<double> uring_rtt_ns(int fd) {
    message m{};
    auto start = clock_type::now();
    for (int i = 0; i < rounds; ++i) {
        auto w = co_await io::write(fd, m);
        if (!w || *w != m.size()) std::abort();
        for (std::size_t got = 0; got < m.size();) {
            auto r = co_await io::read(fd, std::span(m.data() + got, m.size() - got));
            if (!r || *r == 0) std::abort();
            got += *r;
        }
    }
    co_return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / rounds;
}

task<int> ready(int i) { co_return i; }

task<double> co_await_ready_ns() {
    constexpr int n = 10'000'000;
    long sum = 0;
    auto start = clock_type::now();
    for (int i = 0; i < n; ++i) sum += co_await ready(i);
    auto ns = std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / n;
    if (sum == 0) std::abort();
    co_return ns;
}

// What co_await_ready_ns pays beyond the work itself: the same loop with a plain call.
// The empty asm hides the value: otherwise clang sees through the call and sums in closed form.
__attribute__((noinline)) int plain(int i) {
    asm volatile("" : "+r"(i));
    return i;
}
double plain_call_ns() {
    constexpr int n = 10'000'000;
    long sum = 0;
    auto start = clock_type::now();
    for (int i = 0; i < n; ++i) sum += plain(i);
    auto ns = std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / n;
    if (sum == 0) std::abort();
    return ns;
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "  A 64-byte ping-pong over a socketpair with co_await, beside blocking read/write,\n"
                             "  and the cost of a co_await that completes at once; one JSON line per figure.\n"))
        return 0;
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(sv[0]);
        echo_forever(sv[1]);
    }
    ::close(sv[1]);

    io_context ctx;
    std::vector<double> raw, uring;
    // Interleaved, so both see the same machine state; the first pair warms up.
    for (int r = 0; r <= repeats; ++r) {
        double a = raw_rtt_ns(sv[0]);
        double b = ctx.run_until(uring_rtt_ns(sv[0]));
        if (r == 0) continue;
        raw.push_back(a);
        uring.push_back(b);
    }
    ::close(sv[0]);
    ::waitpid(pid, nullptr, 0);

    std::vector<double> ready_ns, call_ns;
    for (int r = 0; r < repeats; ++r) {
        ready_ns.push_back(ctx.run_until(co_await_ready_ns()));
        call_ns.push_back(plain_call_ns());
    }

    bench::print({"pingpong_rtt", bench::median(uring), "ns", "blocking read/write ping-pong on the same socketpair",
                  bench::median(raw), "lower", "ratio <= 1.10"});
    bench::print({"co_await_ready_ns", bench::median(ready_ns), "ns", "plain non-inlined function call",
                  bench::median(call_ns), "lower", "report"});
}
