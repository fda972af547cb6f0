// The baseline of compile_bench.sh: a minimal Boost.Beast HTTP server, one io_context,
// answering "hello world" on every connection, as a user of Asio would write it.
#include <boost/asio.hpp>
#include <boost/beast.hpp>

#include <cstdio>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

asio::awaitable<void> session(tcp::socket socket) {
    beast::flat_buffer buffer;
    for (;;) {
        http::request<http::string_body> request;
        co_await http::async_read(socket, buffer, request, asio::use_awaitable);
        http::response<http::string_body> response{http::status::ok, request.version()};
        response.set(http::field::content_type, "text/plain");
        response.keep_alive(request.keep_alive());
        response.body() = "hello world\n";
        response.prepare_payload();
        co_await http::async_write(socket, response, asio::use_awaitable);
        if (!response.keep_alive()) break;
    }
}

asio::awaitable<void> serve(tcp::acceptor acceptor) {
    for (;;) {
        auto socket = co_await acceptor.async_accept(asio::use_awaitable);
        asio::co_spawn(acceptor.get_executor(), session(std::move(socket)), asio::detached);
    }
}

int main() {
    asio::io_context io;
    tcp::acceptor acceptor(io, {tcp::v4(), 8000});
    asio::co_spawn(io, serve(std::move(acceptor)), asio::detached);
    std::puts("Listening on port 8000");
    io.run();
}
