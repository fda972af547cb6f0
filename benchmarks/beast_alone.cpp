// beast_alone: the baseline of http_bench.sh's beast_clustered_vs_alone — Boost.Beast alone, as
// its users scale it: one io_context per thread, one thread per core, each thread with an
// SO_REUSEPORT acceptor of its own. The HTTP session is examples/beast_server's, without the drain.
//   beast_alone [--help] [--threads N] [--port P]   (N: default, and 0, one per CPU)
// Prints "Listening on http://127.0.0.1:<port> (<N> threads)"; SIGTERM or SIGINT ends it.
#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto as_tuple = asio::as_tuple(asio::use_awaitable);

http::response<http::string_body> answer(const http::request<http::string_body>& req) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "text/plain");
    if (req.target() == "/") {
        res.body() = "Hello, World!";
    } else {
        res.result(http::status::not_found);
        res.body() = "Not Found\n";
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

asio::awaitable<void> http_session(beast::tcp_stream stream) {
    beast::flat_buffer buffer;
    for (;;) {
        if (buffer.size() == 0) {
            stream.expires_after(30s);
            auto [error, n] = co_await stream.async_read_some(buffer.prepare(4096), as_tuple);
            buffer.commit(n);
            if (error) co_return;
        }
        http::request<http::string_body> req;
        stream.expires_after(30s);
        auto [read_error, n] = co_await http::async_read(stream, buffer, req, as_tuple);
        if (read_error) co_return;
        auto res = answer(req);
        auto [write_error, m] = co_await http::async_write(stream, res, as_tuple);
        if (write_error || !res.keep_alive()) co_return;
    }
}

asio::awaitable<void> accept_all(tcp::acceptor& acceptor) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(as_tuple);
        if (ec == asio::error::operation_aborted) co_return;
        if (ec) continue;
        asio::co_spawn(acceptor.get_executor(), http_session(beast::tcp_stream(std::move(socket))), asio::detached);
    }
}

tcp::acceptor reuseport_acceptor(asio::io_context& io, const tcp::endpoint& at) {
    tcp::acceptor acceptor(io, at.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
    acceptor.bind(at);
    acceptor.listen(asio::socket_base::max_listen_connections);
    return acceptor;
}

std::optional<unsigned> number(std::string_view text, unsigned max) {
    unsigned n = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (err != std::errc() || end != text.data() + text.size() || n > max) return std::nullopt;
    return n;
}

std::string_view option(int argc, char** argv, std::string_view flag, std::string_view fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return argv[i + 1];
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    if (std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; })) {
        std::puts("usage: beast_alone [--threads N] [--port P]\n"
                  "  Boost.Beast alone: one io_context per thread (N, default one per CPU), each with an\n"
                  "  SO_REUSEPORT acceptor on 127.0.0.1:P (default 8000; 0: the kernel picks). GET / says hello.");
        return 0;
    }
    const auto threads = number(option(argc, argv, "--threads", "0"), 1024);
    const auto port = number(option(argc, argv, "--port", "8000"), 65535);
    if (!threads || !port) {
        std::fputs("usage: beast_alone [--threads N] [--port P]\n", stderr);
        return 2;
    }
    const unsigned n = *threads ? *threads : std::max(1u, std::thread::hardware_concurrency());

    std::vector<std::unique_ptr<asio::io_context>> loops;
    std::vector<tcp::acceptor> acceptors;
    tcp::endpoint at(asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(*port));
    for (unsigned i = 0; i < n; ++i) {
        loops.push_back(std::make_unique<asio::io_context>(1));
        acceptors.push_back(reuseport_acceptor(*loops.back(), at));
        at = acceptors.back().local_endpoint();  // port 0: the others join the port the first got
    }
    for (unsigned i = 0; i < n; ++i) asio::co_spawn(*loops[i], accept_all(acceptors[i]), asio::detached);

    asio::signal_set stop(*loops[0], SIGTERM, SIGINT);
    stop.async_wait([&](const boost::system::error_code&, int) {
        for (auto& l : loops) l->stop();
    });
    std::printf("Listening on http://127.0.0.1:%u (%u threads)\n", at.port(), n);
    std::fflush(stdout);
    std::vector<std::jthread> running;
    for (unsigned i = 1; i < n; ++i) running.emplace_back([&loop = *loops[i]] { loop.run(); });
    loops[0]->run();
    return 0;
}
