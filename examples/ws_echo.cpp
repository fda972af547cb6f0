// ws_echo: a clustered WebSocket echo server — every worker answers GET /ws with the
// WebSocket handshake (cluster/http.hpp's upgrade hook) and sends back each message it gets.
//   ./ws_echo [--help] [--workers N] [--port P] [--host A] [--max-message B]
//             [--send-queue B] [--ping-ms T]
//     N: workers (default, and 0: one per CPU); P: port (default 8080; 0: the kernel picks);
//     A: address (default 127.0.0.1); B: the largest message taken (default 1 MiB; bigger
//     closes with 1009) and the bytes a client may leave unread (default 4 MiB; more closes
//     with 1008); T: silence before a ping, and again before the client counts as gone.
//   GET /ws   the echo: text as text, binary as binary
//   GET /fds  the file descriptors the answering worker has open (no leak, says a test)
// SIGHUP replaces the workers one by one: their WebSockets get close code 1012 (service
// restart). SIGTERM or Ctrl-C stops it gracefully: every WebSocket gets 1001 (going away),
// then each worker prints "worker <id> (pid <pid>): <C> connections, <W> websockets".
#include <cluster/cluster.hpp>
#include <cluster/http.hpp>
#include <cluster/websocket.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

using namespace cluster;
using namespace std::chrono_literals;

using proto = protocol<>;

struct settings {
    unsigned workers = 0;
    endpoint where;
    websocket::options ws;
};

// One worker's HTTP side, and the WebSockets it upgrades to.
class echo {
public:
    explicit echo(const settings& s) : settings_(s) {}

    void operator()(const http::request& req, http::response& res) {
        if (req.path() == "/ws") {
            (void)websocket::accept_handshake(req, res);
        } else if (req.path() == "/fds") {
            const auto fds = std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                           std::filesystem::directory_iterator());
            res.send("200 OK", "text/plain", std::to_string(fds));
        } else {
            res.send("404 Not Found", "text/plain", "Not Found\n");
        }
    }

    task<void> on_upgrade(http::upgraded u) {
        ++upgraded_;
        websocket::socket ws(std::move(u.stream), u.rest, settings_.ws, &sockets_);
        for (;;) {
            auto m = co_await ws.receive();
            if (m.kind == websocket::kind::close) co_return;
            // A failed send has begun the close (a reader too slow): receive() ends it.
            if (m.kind == websocket::kind::text) {
                auto sent = co_await ws.send_text(m.data);
                (void)sent;
            } else {
                auto sent = co_await ws.send_binary(m.data);
                (void)sent;
            }
        }
    }

    [[nodiscard]] websocket::group& sockets() noexcept { return sockets_; }
    [[nodiscard]] unsigned long long upgraded() const noexcept { return upgraded_; }

private:
    const settings& settings_;
    websocket::group sockets_;
    unsigned long long upgraded_ = 0;
};

task<void> worker_main(worker<proto>& w, const settings& s) {
    auto connections = co_await w.listen(s.where, schedule::round_robin);
    echo app(s);
    // Disconnected by the primary: HTTP drains, and every WebSocket is told the server is
    // restarting (1012: a reload replaces this worker) or going away (1001: a stop).
    app.sockets().close_all_on(w);
    http::server<echo> server(app, w.stop_token());
    for (;;) {
        auto stream = co_await connections.accept();
        if (stream) {
            server.serve(std::move(*stream));
            continue;
        }
        if (stream.error() == errc::listener_closed) break;
        std::fprintf(stderr, "worker %u: accept: %s\n", w.id(), stream.error().message().c_str());
        (void)co_await io::sleep_for(100ms).with_stop_token(w.stop_token());
    }
    co_await server.join();
    std::printf("worker %u (pid %d): %llu connections, %llu websockets\n", w.id(), ::getpid(),
                static_cast<unsigned long long>(connections.accepted()), app.upgraded());
}

task<void> primary_main(primary<proto>& p, const settings& s) {
    std::printf("Primary %d running\n", ::getpid());
    for (unsigned i = 0; i < s.workers; ++i) co_await p.fork();
    bool said = false;
    for (;;) {
        auto e = co_await p.next_event();
        if (auto* l = e.get_if<listening_event>(); l && !said) {
            said = true;
            std::printf("Listening on ws://%s:%u/ws (%u worker%s)\n", l->address.c_str(), l->port, s.workers,
                        s.workers == 1 ? "" : "s");
        }
    }
}

std::string_view option(int argc, char** argv, std::string_view flag, std::string_view fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return argv[i + 1];
    return fallback;
}

std::optional<unsigned long> number(std::string_view text, unsigned long min, unsigned long max) {
    unsigned long n = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (err != std::errc() || end != text.data() + text.size() || n < min || n > max) return std::nullopt;
    return n;
}

std::optional<settings> parse_settings(int argc, char** argv) {
    settings s;
    const auto workers = number(option(argc, argv, "--workers", "0"), 0, 1024);
    const auto port = number(option(argc, argv, "--port", "8080"), 0, 65535);
    const auto max_message = number(option(argc, argv, "--max-message", "1048576"), 1, 1ul << 30);
    const auto send_queue = number(option(argc, argv, "--send-queue", "4194304"), 1, 1ul << 30);
    const auto ping_ms = number(option(argc, argv, "--ping-ms", "30000"), 10, 24 * 60 * 60 * 1000);
    if (!workers || !port || !max_message || !send_queue || !ping_ms) return std::nullopt;
    try {
        s.where = endpoint::tcp(option(argc, argv, "--host", "127.0.0.1"), static_cast<std::uint16_t>(*port));
    } catch (const std::system_error&) {
        return std::nullopt;
    }
    s.workers = *workers == 0 ? cpu_count() : static_cast<unsigned>(*workers);
    s.ws.max_message_bytes = *max_message;
    s.ws.max_send_queue_bytes = *send_queue;
    s.ws.ping_interval = std::chrono::milliseconds(*ping_ms);
    return s;
}

void print_usage(std::FILE* to, const char* program) {
    std::fprintf(to,
                 "usage: %s [--workers 0..1024] [--port 0..65535] [--host ADDRESS]\n"
                 "         [--max-message BYTES] [--send-queue BYTES] [--ping-ms 10..86400000]\n"
                 "  A WebSocket echo on ws://127.0.0.1:8080/ws, one worker per CPU (--workers 0).\n"
                 "  SIGHUP reloads (WebSockets closed with 1012); SIGTERM or Ctrl-C closes\n"
                 "  every WebSocket with 1001 and stops it.\n",
                 program);
}

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; })) {
        print_usage(stdout, argv[0]);
        return 0;
    }
    const auto s = parse_settings(argc, argv);
    if (!s) {
        print_usage(stderr, argv[0]);
        return 2;
    }
    const int code = run<proto>(
        argc, argv, [&s](primary<proto>& p) { return primary_main(p, *s); },
        [&s](worker<proto>& w) { return worker_main(w, *s); });
    std::printf("Primary %d stopped: exit code %d\n", ::getpid(), code);
    return code;
}
