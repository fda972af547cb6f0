// hello: Node's basic cluster example. The primary forks one worker per CPU and forks a
// replacement whenever one dies; the workers answer "hello world" over HTTP, all on the
// one port. Ctrl-C or SIGTERM disconnects every worker and ends the program.
//   ./hello [--workers N] [--port P]      then: curl localhost:8000, or kill -9 a worker
#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <system_error>

using namespace cluster;

// These workers take no messages, but a protocol names at least one type.
struct nothing {};
BOOST_DESCRIBE_STRUCT(nothing, (), ())
using proto = protocol<nothing>;

// The number after `flag` on the command line, or `fallback`.
unsigned option(int argc, char** argv, std::string_view flag, unsigned fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
    return fallback;
}

// Opened before the first fork: every worker, and every replacement, accepts on it.
unique_fd listen_on(unsigned port) {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd.get(), 128) != 0)
        throw std::system_error(errno, std::system_category(), "hello: port " + std::to_string(port));
    socklen_t len = sizeof addr;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    std::printf("Listening on port %u\n", ntohs(addr.sin_port));
    return fd;
}

task<void> serve(worker<proto>& w, int listener) {
    // Ctrl-C reaches the whole process group; the primary decides when workers leave.
    std::signal(SIGINT, SIG_IGN);
    std::printf("Worker %d started\n", ::getpid());
    constexpr std::string_view hello =
        "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n";
    // The stop token ends these waits when the primary disconnects this worker.
    while (auto client = co_await io::accept(listener).with_stop_token(w.stop_token())) {
        char request[4096];
        (void)co_await io::recv(client->get(), request).with_stop_token(w.stop_token());
        (void)co_await io::send(client->get(), hello);
    }
}

task<void> restart_dead(primary<proto>& p) {
    for (;;) {
        auto dead = co_await p.next<exit_event>();
        std::printf("Worker %d died (%s). Restarting...\n", dead.pid, dead.status.to_string().c_str());
        (void)co_await p.fork();
    }
}

task<void> until_signal(signal_set& signals) { (void)co_await signals.next(); }

task<void> primary_main(primary<proto>& p, unsigned workers) {
    signal_set stop{SIGINT, SIGTERM};
    std::printf("Primary %d running\n", ::getpid());
    for (unsigned i = 0; i < workers; ++i) (void)co_await p.fork();
    (void)co_await when_any(restart_dead(p), until_signal(stop));
    std::printf("Primary %d stopping: disconnecting %zu workers\n", ::getpid(), p.workers().size());
    co_await p.disconnect_all();
    std::printf("All workers have left\n");
}

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines, as they happen, even into a pipe
    const unsigned workers = option(argc, argv, "--workers", cpu_count());
    const unique_fd listener = listen_on(option(argc, argv, "--port", 8000));
    return run<proto>(
        argc, argv, [workers](primary<proto>& p) { return primary_main(p, workers); },
        [&listener](worker<proto>& w) { return serve(w, listener.get()); });
}
