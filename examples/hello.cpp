// hello: Node's basic cluster example, supervised. The primary keeps one worker per CPU
// answering "hello world" over HTTP, all on one port, and prints what its supervisor does.
// Nothing here restarts a worker or handles a signal: the restart policy and run() do.
//   ./hello [--workers N] [--port P] [--crash]      then: curl localhost:8000, and
//   kill -9 <a worker>    the restart policy replaces it
//   kill -HUP <primary>   rolling reload: every worker replaced by a fresh one, one at a time
//   kill -TTIN / -TTOU    one worker more / one fewer
//   kill -TERM, Ctrl-C    graceful stop, exit code 0 (a second one kills the workers at once)
//   --crash               every worker fails as it starts: the primary gives up, exit code 3
#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
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
    constexpr std::string_view hello =
        "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n";
    // The stop token ends these waits when the primary disconnects this worker (a stop, a
    // reload, a scale-down); the request being answered is finished first.
    while (auto client = co_await io::accept(listener).with_stop_token(w.stop_token())) {
        char request[4096];
        (void)co_await io::recv(client->get(), request).with_stop_token(w.stop_token());
        (void)co_await io::send(client->get(), hello);
    }
}

task<void> fail_at_start(worker<proto>&) { throw std::runtime_error("--crash: this worker fails as it starts"); }

// One line per thing the supervisor did.
void print(const event<proto>& e) {
    if (auto* o = e.get_if<online_event>()) {
        std::printf("Worker %u (pid %d) online\n", o->worker_id, o->pid);
    } else if (auto* x = e.get_if<exit_event>()) {
        const std::string why = x->reason == stop_reason::none ? "" : std::string(" (") + to_string(x->reason) + ")";
        std::printf("Worker %u (pid %d) exited: %s%s\n", x->worker_id, x->pid, x->status.to_string().c_str(), why.c_str());
    } else if (auto* r = e.get_if<restart_scheduled_event>()) {
        std::printf("Replacing worker %u in %lld ms (restart %u)\n", r->worker_id,
                    static_cast<long long>(r->delay.count()), r->attempt);
    } else if (auto* g = e.get_if<gave_up_event>()) {
        std::printf("Giving up: %s\n", g->reason.c_str());
    } else if (auto* l = e.get_if<reload_event>()) {
        if (l->ok)
            std::printf("Reload done: %u workers replaced\n", l->replaced);
        else
            std::printf("Reload stopped after %u workers: %s\n", l->replaced, l->reason.c_str());
    }
}

// Never returns: a stop signal or the policy giving up cancels it, and run() then stops
// the workers.
task<void> primary_main(primary<proto>& p, unsigned workers) {
    std::printf("Primary %d running\n", ::getpid());
    co_await p.scale(workers);
    for (;;) {
        auto e = co_await p.next_event();
        print(e);
    }
}

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines, as they happen, even into a pipe
    const unsigned workers = option(argc, argv, "--workers", cpu_count());
    const bool crash = std::find(argv + 1, argv + argc, std::string_view("--crash")) != argv + argc;
    const unique_fd listener = listen_on(option(argc, argv, "--port", 8000));
    primary_options options;
    // A crash loop's cap, lowered from the default 10 so that --crash gives up within a
    // second. With the default backoff, one worker crashing alone never reaches 10 restarts
    // in 10 s: the policy would go on retrying it every 15 s, forever.
    if (crash) options.restart.max_restarts = 3;
    const int code = run<proto>(
        argc, argv, [workers](primary<proto>& p) { return primary_main(p, workers); },
        [&listener, crash](worker<proto>& w) { return crash ? fail_at_start(w) : serve(w, listener.get()); }, options);
    // Only the primary gets here: a forked worker ends inside run().
    std::printf("Primary %d stopped: exit code %d\n", ::getpid(), code);
    return code;
}
