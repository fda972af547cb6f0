// beast_server: an ordinary Boost.Beast server — HTTP/1.1 with keep-alive and a WebSocket echo —
// clustered on every core by cluster::asio: the Beast code stays as it was, and a few lines give
// it the worker's connections, loop and stop (docs/asio.md).
//   ./beast_server [--help] [--workers N] [--port P] [--host A] [--schedule S]
//     N: workers (default, and 0: one per CPU); P: port (default 8000; 0: the kernel picks one);
//     A: address (default 127.0.0.1); S: round_robin (default), shared, reuseport, sticky,
//     least_connections, or custom (by the client's port, for the show)
//   GET /       Hello, World!
//   GET /pid    the pid of the worker that answered
//   GET /slow   Hello, World!, 300 ms later (a request in progress during a stop or a reload)
//   GET /ws     the WebSocket echo: text as text, binary as binary
// SIGTERM or Ctrl-C stops it gracefully (exit code 0): requests in progress are answered, idle
// connections close, WebSockets get 1001 (going away); then each worker prints "worker <id>
// (pid <pid>): <C> connections, <R> requests, <W> websockets". SIGHUP replaces the workers one by
// one, their WebSockets getting 1012 (service restart); SIGTTIN / SIGTTOU add or remove one.
#include <cluster/asio.hpp>
#include <cluster/cluster.hpp>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <functional>
#include <list>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// The Beast server, as a user of Asio writes one. What it needs to drain: a std::stop_token,
// and the close code its WebSockets get then.

class server {
public:
    server(std::stop_token stop, std::function<websocket::close_code()> closing)
        : stop_(std::move(stop)), closing_(std::move(closing)) {}

    // One connection's HTTP requests, in turn, until either side closes it; a WebSocket
    // upgrade hands it over to the echo.
    asio::awaitable<void> http_session(beast::tcp_stream stream) {
        open_.push_front({&stream});
        const forget registered{open_, open_.begin()};
        beast::flat_buffer buffer;
        for (;;) {
            if (buffer.size() == 0 && !co_await first_bytes(stream, buffer, registered.it->idle)) co_return;
            http::request<http::string_body> req;
            stream.expires_after(30s);
            auto [read_error, n] = co_await http::async_read(stream, buffer, req, as_tuple);
            if (read_error) co_return;
            if (websocket::is_upgrade(req)) co_return co_await websocket_session(std::move(stream), std::move(req));
            if (req.target() == "/slow") co_await later(300ms);
            auto res = answer(req);
            auto [write_error, m] = co_await http::async_write(stream, res, as_tuple);
            if (write_error || !res.keep_alive()) co_return;
        }
    }

    // Once the stop comes, the connections waiting for a request are closed (the others close
    // after their answer) and the WebSockets are told so.
    asio::awaitable<void> close_idle_on_stop() {
        auto [cancelled] = co_await cluster::asio::async_wait(stop_, as_tuple);
        if (cancelled) co_return;
        for (auto& c : open_)
            if (c.idle) c.stream->cancel();
    }

    [[nodiscard]] unsigned long long requests() const noexcept { return requests_; }
    [[nodiscard]] unsigned long long websockets() const noexcept { return websockets_; }

private:
    static constexpr auto as_tuple = asio::as_tuple(asio::use_awaitable);

    struct connection_state {
        beast::tcp_stream* stream;
        bool idle = false;  // waiting for a request's first bytes
    };
    struct forget {
        std::list<connection_state>& open;
        std::list<connection_state>::iterator it;
        ~forget() { open.erase(it); }
    };

    // Waits, idle, for the next request's first bytes: false if the connection ends first, or
    // the stop (then no request is cut: none has begun).
    asio::awaitable<bool> first_bytes(beast::tcp_stream& stream, beast::flat_buffer& buffer, bool& idle) {
        if (stop_.stop_requested()) co_return false;
        idle = true;
        stream.expires_after(30s);
        auto [error, n] = co_await stream.async_read_some(buffer.prepare(4096), as_tuple);
        idle = false;
        buffer.commit(n);
        co_return !error;
    }

    http::response<http::string_body> answer(const http::request<http::string_body>& req) {
        ++requests_;
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.set(http::field::content_type, "text/plain");
        if (req.target() == "/" || req.target() == "/slow") {
            res.body() = "Hello, World!";
        } else if (req.target() == "/pid") {
            res.body() = std::to_string(::getpid());
        } else {
            res.result(http::status::not_found);
            res.body() = "Not Found\n";
        }
        // Answered in full; once stopping, the connection closes after it.
        res.keep_alive(req.keep_alive() && !stop_.stop_requested());
        res.prepare_payload();
        return res;
    }

    static asio::awaitable<void> later(std::chrono::milliseconds d) {
        asio::steady_timer timer(co_await asio::this_coro::executor, d);
        (void)co_await timer.async_wait(as_tuple);
    }

    asio::awaitable<void> websocket_session(beast::tcp_stream stream, http::request<http::string_body> req) {
        ++websockets_;
        stream.expires_never();
        websocket::stream<beast::tcp_stream> ws(std::move(stream));
        ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        auto [accept_error] = co_await ws.async_accept(req, as_tuple);
        if (accept_error) co_return;
        // Both end once either does: the echo when the client closes, the closer when the stop
        // comes (its close makes the echo's read end too).
        co_await (echo(ws) || close_on_stop(ws));
    }

    static asio::awaitable<void> echo(websocket::stream<beast::tcp_stream>& ws) {
        beast::flat_buffer buffer;
        for (;;) {
            auto [read_error, n] = co_await ws.async_read(buffer, as_tuple);
            if (read_error) co_return;
            ws.text(ws.got_text());
            auto [write_error, m] = co_await ws.async_write(buffer.data(), as_tuple);
            if (write_error) co_return;
            buffer.consume(buffer.size());
        }
    }

    asio::awaitable<void> close_on_stop(websocket::stream<beast::tcp_stream>& ws) {
        auto [cancelled] = co_await cluster::asio::async_wait(stop_, as_tuple);
        if (cancelled) co_return;
        (void)co_await ws.async_close(closing_(), as_tuple);
    }

    std::stop_token stop_;
    std::function<websocket::close_code()> closing_;
    std::list<connection_state> open_;  // the HTTP connections, each registered by its session
    unsigned long long requests_ = 0;
    unsigned long long websockets_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Clustering it. A worker runs the server on an asio::io_context that shares its thread, on the
// connections its listener gives, and stops with it.

using proto = cluster::protocol<>;  // the workers take no messages

struct settings {
    unsigned workers = 0;
    cluster::endpoint where;
    cluster::schedule how = cluster::schedule::round_robin;
};

asio::awaitable<void> accept_all(cluster::asio::acceptor& acceptor, server& app) {
    for (;;) {
        auto [ec, connection] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
        if (ec == cluster::errc::listener_closed) co_return;  // the worker is leaving: drain
        if (ec) continue;                                     // a connection that failed as it came
        asio::co_spawn(
            acceptor.get_executor(),
            [](server& app, cluster::asio::connection<> c) -> asio::awaitable<void> {
                beast::tcp_stream stream(std::move(c.socket));  // named: see docs/runtime.md on GCC 12
                co_await app.http_session(std::move(stream));   // c.lease: counted until here
            }(app, std::move(connection)),
            asio::detached);
    }
}

cluster::task<void> worker_main(cluster::worker<proto>& w, const settings& s) {
    asio::io_context io{1};
    cluster::asio::acceptor acceptor(io, co_await w.listen(s.where, s.how));
    server app(w.stop_token(), [&w] {
        return w.leave_reason() == cluster::leave_reason::replaced ? websocket::close_code::service_restart
                                                                   : websocket::close_code::going_away;
    });
    asio::co_spawn(io, accept_all(acceptor, app), asio::detached);
    asio::co_spawn(io, app.close_idle_on_stop(), asio::detached);
    co_await cluster::asio::run(io);  // until the drain is over: Asio has run out of work
    std::printf("worker %u (pid %d): %llu connections, %llu requests, %llu websockets\n", w.id(), ::getpid(),
                static_cast<unsigned long long>(acceptor.listener().accepted()), app.requests(), app.websockets());
    std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// The primary: forks the workers and says what happens to them.

cluster::task<void> primary_main(cluster::primary<proto>& p, const settings& s) {
    std::printf("Primary %d running\n", ::getpid());
    for (unsigned i = 0; i < s.workers; ++i) co_await p.fork();
    bool listening = false;
    pid_t last_exit = 0;
    for (;;) {
        auto e = co_await p.next_event();
        if (auto* o = e.get_if<cluster::online_event>()) {
            std::printf("Worker %d started\n", o->pid);
        } else if (auto* l = e.get_if<cluster::listening_event>(); l && !std::exchange(listening, true)) {
            std::printf("Listening on http://%s:%u (%s, %u workers)\n", l->address.c_str(), l->port,
                        cluster::to_string(s.how), s.workers);
        } else if (auto* x = e.get_if<cluster::exit_event>()) {
            last_exit = x->pid;
        } else if (e.is<cluster::restart_scheduled_event>()) {
            std::printf("Worker %d died. Restarting...\n", last_exit);
        } else if (auto* r = e.get_if<cluster::reload_event>()) {
            if (r->ok)
                std::printf("Reload done: %u workers replaced\n", r->replaced);
            else
                std::printf("Reload stopped after %u workers: %s\n", r->replaced, r->what.c_str());
        }
    }
}

std::string_view option(int argc, char** argv, std::string_view flag, std::string_view fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return argv[i + 1];
    return fallback;
}

std::optional<unsigned> number(std::string_view text, unsigned max) {
    unsigned n = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (err != std::errc() || end != text.data() + text.size() || n > max) return std::nullopt;
    return n;
}

std::optional<settings> parse_settings(int argc, char** argv) {
    const auto workers = number(option(argc, argv, "--workers", "0"), 1024);
    const auto port = number(option(argc, argv, "--port", "8000"), 65535);
    const auto how = cluster::parse_schedule(option(argc, argv, "--schedule", "round_robin"));
    if (!workers || !port || !how) return std::nullopt;
    try {
        return settings{*workers == 0 ? cluster::cpu_count() : *workers,
                        cluster::endpoint::tcp(std::string(option(argc, argv, "--host", "127.0.0.1")),
                                               static_cast<std::uint16_t>(*port)),
                        *how};
    } catch (const std::system_error&) {
        return std::nullopt;
    }
}

void print_usage(std::FILE* to, const char* program) {
    std::fprintf(to,
                 "usage: %s [--workers 0..1024] [--port 0..65535] [--host ADDRESS]\n"
                 "         [--schedule round_robin|shared|reuseport|sticky|least_connections|custom]\n"
                 "  A Boost.Beast server clustered by cluster::asio: one worker per CPU (--workers 0) on\n"
                 "  127.0.0.1:8000. GET / says hello, /pid names the worker, /slow answers 300 ms later,\n"
                 "  /ws is a WebSocket echo. SIGTERM or Ctrl-C stops it gracefully; SIGHUP replaces the\n"
                 "  workers one by one; SIGTTIN / SIGTTOU add or remove one.\n",
                 program);
}

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines, as they happen, even into a pipe
    if (std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; })) {
        print_usage(stdout, argv[0]);
        return 0;
    }
    const auto s = parse_settings(argc, argv);
    if (!s) {
        print_usage(stderr, argv[0]);
        return 2;
    }
    cluster::primary_options o;
    o.pick = [](const cluster::endpoint& client, std::span<const cluster::candidate> live) {
        return live[client.port() % live.size()].worker_id;
    };
    const int code = cluster::run<proto>(
        argc, argv, [&s](cluster::primary<proto>& p) { return primary_main(p, *s); },
        [&s](cluster::worker<proto>& w) { return worker_main(w, *s); }, o);
    std::printf("Primary %d stopped: exit code %d\n", ::getpid(), code);
    return code;
}
