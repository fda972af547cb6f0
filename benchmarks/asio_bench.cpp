// asio_bench: what sharing the thread with the cluster loop costs Asio code — cluster::asio::run()
// against asio::io_context::run() alone, in the same run: a 64-byte ping-pong over a socketpair
// (an echo process on the other end), each round trip a wait in Asio's reactor and two handlers;
// and a chain of posted handlers, which measures the turn the cluster loop takes between two.
#include <cluster/asio.hpp>
#include <cluster/cluster.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "blocking_io.hpp"
#include "report.hpp"

namespace ba = boost::asio;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int round_trips = 20'000;
constexpr int handlers = 1'000'000;
constexpr int repeats = 7;
using message = std::array<char, 64>;

[[noreturn]] void echo_forever(int fd) {
    message m;
    while (bench::read_full(fd, m.data(), m.size()))
        if (::write(fd, m.data(), m.size()) != static_cast<ssize_t>(m.size())) break;
    _exit(0);
}

ba::awaitable<void> ping_pong(ba::local::stream_protocol::socket& s) {
    message m{};
    for (int i = 0; i < round_trips; ++i) {
        co_await ba::async_write(s, ba::buffer(m), ba::use_awaitable);
        co_await ba::async_read(s, ba::buffer(m), ba::use_awaitable);
    }
}

// One handler posts the next, `handlers` times.
struct chain {
    ba::io_context& io;
    int left;
    void operator()() {
        if (--left > 0) ba::post(io, chain{io, left});
    }
};

// Nanoseconds per unit of `work` on `io`, run alone or shared with a cluster loop. `work`
// returns what must live while it runs.
template <class Work>
double ns_per(int units, bool shared, Work work) {
    cluster::io_context ring;  // made in both cases, so that only the sharing differs
    ba::io_context io{1};
    const auto kept = work(io);
    const auto start = clock_type::now();
    if (shared)
        cluster::sync_wait(cluster::asio::run(io));
    else
        io.run();
    return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / units;
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "Asio code under cluster::asio::run() against asio::io_context::run() alone: a 64-byte\n"
                             "ping-pong over a socketpair, and a chain of posted handlers (ns each, median of 7).\n"))
        return 0;
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 1;
    const pid_t echo = ::fork();
    if (echo == 0) {
        ::close(sv[0]);
        echo_forever(sv[1]);
    }
    ::close(sv[1]);

    std::vector<double> alone_rtt, shared_rtt, alone_post, shared_post;
    for (int r = 0; r < repeats; ++r) {
        for (bool shared : {false, true}) {
            const int fd = ::dup(sv[0]);
            const double rtt = ns_per(round_trips, shared, [fd](ba::io_context& io) {
                auto s = std::make_shared<ba::local::stream_protocol::socket>(io, ba::local::stream_protocol(), fd);
                ba::co_spawn(io, ping_pong(*s), ba::detached);
                return s;
            });
            (shared ? shared_rtt : alone_rtt).push_back(rtt);
            const double post = ns_per(handlers, shared, [](ba::io_context& io) {
                ba::post(io, chain{io, handlers});
                // A socket open, as any server has one: Asio's reactor then takes its turns too.
                return std::make_shared<ba::local::stream_protocol::socket>(io, ba::local::stream_protocol());
            });
            (shared ? shared_post : alone_post).push_back(post);
        }
    }
    ::close(sv[0]);
    ::waitpid(echo, nullptr, 0);

    bench::print({"asio_shared_loop_rtt", bench::median(shared_rtt), "ns per 64-byte round trip",
                  "the same Asio code under asio::io_context::run() alone", bench::median(alone_rtt), "lower",
                  "ratio <= 1.10"});
    bench::print({"asio_shared_loop_handler", bench::median(shared_post), "ns per posted handler",
                  "the same chain under asio::io_context::run() alone", bench::median(alone_post), "lower",
                  "ratio <= 2.0"});
    return 0;
}
