// A program built against an installed cluster::asio: an asio::io_context run by the cluster
// loop (cluster::asio::run), whose Asio code awaits a cluster task (async_await) and whose
// cluster task awaits an Asio timer (use_task).
#include <cluster/asio.hpp>
#include <cluster/io.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>

namespace ba = boost::asio;

cluster::task<int> answer() { co_return 42; }

ba::awaitable<void> ask(int& got) { got = co_await cluster::asio::async_await(answer(), ba::use_awaitable); }

cluster::task<bool> wait(ba::io_context& io) {
    ba::steady_timer timer(io, std::chrono::milliseconds(1));
    auto waited = co_await timer.async_wait(cluster::asio::use_task);
    co_return waited.has_value();
}

cluster::task<int> run() {
    ba::io_context io{1};
    int got = 0;
    ba::co_spawn(io, ask(got), ba::detached);
    auto [waited, ran] = co_await cluster::when_all(wait(io), cluster::asio::run(io));
    (void)ran;
    co_return waited ? got : 0;
}

int main() {
    const int got = cluster::sync_wait(run());
    std::printf("asio consumer: %d\n", got);
    return got == 42 ? 0 : 1;
}
