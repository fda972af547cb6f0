// strict_consumer.cpp's check for the Asio bridge: a worker that serves with Asio, every public
// template of cluster/asio.hpp instantiated, built under the warnings a careful user turns on
// with the headers included as a consumer's are. Compiled only.
#include <cluster/asio.hpp>
#include <cluster/cluster.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <system_error>
#include <utility>

using namespace std::chrono_literals;
namespace ba = boost::asio;

struct hello {
    std::string text;
};
BOOST_DESCRIBE_STRUCT(hello, (), (text))
using proto = cluster::protocol<hello>;

ba::awaitable<void> session(cluster::asio::connection<> c) {
    const std::string text = "hi\n";
    (void)co_await ba::async_write(c.socket, ba::buffer(text), ba::as_tuple(ba::use_awaitable));
}

ba::awaitable<void> messages(cluster::worker<proto>& w) {
    while (auto m = co_await cluster::asio::async_await(w.receive(), ba::use_awaitable)) {
        const hello back{"back"};
        (void)co_await cluster::asio::async_await(w.send(back), ba::use_awaitable);
        auto asked = co_await cluster::asio::async_await(w.request<hello>(back, 2s), ba::use_awaitable);
        if (!asked) std::fprintf(stderr, "%s\n", asked.error().message().c_str());
    }
    auto [stopped] = co_await cluster::asio::async_wait(w.stop_token(), ba::as_tuple(ba::use_awaitable));
    (void)stopped;
}

ba::awaitable<void> accept_all(cluster::asio::acceptor& a) {
    for (;;) {
        auto [ec, c] = co_await a.async_accept(ba::as_tuple(ba::use_awaitable));
        if (ec == cluster::errc::listener_closed) co_return;
        if (!ec) ba::co_spawn(a.get_executor(), session(std::move(c)), ba::detached);
        auto [ec2, on_strand] =
            co_await a.async_accept(ba::make_strand(a.get_executor()), ba::as_tuple(ba::use_awaitable));
        (void)ec2;
        (void)on_strand;
    }
}

cluster::task<void> worker_main(cluster::worker<proto>& w) {
    ba::io_context io{1};
    auto l = co_await w.listen(cluster::endpoint("127.0.0.1:0"), cluster::schedule::reuseport);
    if (auto native = cluster::asio::try_native_acceptor(io.get_executor(), l)) {
        auto lease = l.count_accepted();
        (void)lease;
    }
    cluster::asio::acceptor a(io, std::move(l));
    ba::co_spawn(io, accept_all(a), ba::detached);
    ba::co_spawn(io, messages(w), ba::detached);
    ba::steady_timer timer(io, 10ms);
    auto waited = co_await timer.async_wait(cluster::asio::use_task);
    if (!waited) std::fprintf(stderr, "%s\n", waited.error().message().c_str());
    co_await ba::post(io, cluster::asio::use_task);
    auto s = co_await cluster::connect(cluster::endpoint("127.0.0.1:1"));
    if (s) {
        auto tcp = cluster::asio::try_adopt(io, std::move(*s));
        if (!tcp) std::fprintf(stderr, "%s\n", tcp.error().message().c_str());
    }
    cluster::tcp_stream unix_stream;
    auto local = cluster::asio::try_adopt<ba::local::stream_protocol::socket>(io, std::move(unix_stream));
    (void)local;
    auto ran = co_await cluster::asio::run(io, w.stop_token(), 5s);
    if (!ran) co_await cluster::asio::run(io);
}

cluster::task<void> primary_main(cluster::primary<proto>& p) { co_await p.fork(); }

int main(int argc, char** argv) { return cluster::run<proto>(argc, argv, primary_main, worker_main); }
