// hello: Node's basic cluster example, supervised. The primary keeps one worker per CPU
// answering "hello world" over HTTP, all on one port, and prints what its supervisor does.
// Nothing here restarts a worker or handles a signal: the restart policy and run() do.
//   ./hello [--help] [--workers N] [--port P] [--crash]   then: curl localhost:8000, and
//   kill -9 <a worker>    the restart policy replaces it
//   kill -HUP <primary>   rolling reload: every worker replaced by a fresh one, one at a time
//   kill -TTIN / -TTOU    one worker more / one fewer
//   kill -TERM, Ctrl-C    graceful stop, exit code 0 (a second one kills the workers at once)
//   --crash               every worker fails as it starts: the primary gives up, exit code 3
#include <cluster/cluster.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

using namespace cluster;

using proto = protocol<>;  // the workers take no messages

// The number after `flag` on the command line, or `fallback`.
unsigned option(int argc, char** argv, std::string_view flag, unsigned fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
    return fallback;
}

task<void> answer(tcp_stream client, std::stop_token stop) {
    constexpr std::string_view hello =
        "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\nhello world\n";
    char request[4096];
    (void)co_await client.read_some(request).with_stop_token(stop);
    (void)co_await client.write(hello);
}

// As in Node, every worker listens on the port, and the primary hands each connection to
// the next worker. Disconnected (a stop, a reload, a scale-down), a worker takes no new
// connection and answers those it has.
task<void> serve(worker<proto>& w, unsigned port) {
    auto listener = co_await w.listen(endpoint::tcp("0.0.0.0", static_cast<std::uint16_t>(port)));
    scope answering;
    for (;;) {
        auto client = co_await listener.accept();
        if (!client) break;
        answering.spawn(answer(std::move(*client), w.stop_token()));
    }
    co_await answering.join();
}

task<void> fail_at_start(worker<proto>&) { throw std::runtime_error("--crash: this worker fails as it starts"); }

// One line per thing the supervisor did.
void print(const event<proto>& e, bool& port_shown) {
    if (auto* l = e.get_if<listening_event>(); l && !port_shown) {
        port_shown = true;  // every worker listens on the same port: say it once
        std::printf("Listening on port %u\n", l->port);
    } else if (auto* o = e.get_if<online_event>()) {
        std::printf("Worker %u (pid %d) online\n", o->worker_id, o->pid);
    } else if (auto* x = e.get_if<exit_event>()) {
        const std::string why = x->reason == stop_reason::none ? "" : std::string(" (") + to_string(x->reason) + ")";
        std::printf("Worker %u (pid %d) exited: %s%s\n", x->worker_id, x->pid, x->status.to_string().c_str(),
                    why.c_str());
    } else if (auto* r = e.get_if<restart_scheduled_event>()) {
        std::printf("Replacing worker %u in %lld ms (restart %u)\n", r->worker_id,
                    static_cast<long long>(r->delay.count()), r->attempt);
    } else if (auto* g = e.get_if<gave_up_event>()) {
        std::printf("Giving up: %s\n", g->what.c_str());
    } else if (auto* l = e.get_if<reload_event>()) {
        if (l->ok)
            std::printf("Reload done: %u workers replaced\n", l->replaced);
        else
            std::printf("Reload stopped after %u workers: %s\n", l->replaced, l->what.c_str());
    }
}

// Never returns: a stop signal or the policy giving up cancels it, and run() then stops
// the workers.
task<void> primary_main(primary<proto>& p, unsigned workers) {
    std::printf("Primary %d running\n", ::getpid());
    co_await p.scale(workers);
    bool port_shown = false;
    for (;;) {
        auto e = co_await p.next_event();
        print(e, port_shown);
    }
}

bool asks_for_help(int argc, char** argv) {
    return std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; });
}

void print_usage(const char* program) {
    std::printf("usage: %s [--workers N] [--port P] [--crash]\n"
                "  N workers (default: one per CPU) answer \"hello world\" over HTTP on port P (default 8000).\n"
                "  Signal the primary: HUP replaces every worker, TTIN / TTOU add / remove one, TERM or\n"
                "  Ctrl-C stops it gracefully. --crash: every worker fails as it starts, and the primary\n"
                "  gives up with exit code 3.\n",
                program);
}

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines, as they happen, even into a pipe
    if (asks_for_help(argc, argv)) {
        print_usage(argv[0]);
        return 0;
    }
    const unsigned workers = option(argc, argv, "--workers", cpu_count());
    const bool crash = std::find(argv + 1, argv + argc, std::string_view("--crash")) != argv + argc;
    const unsigned port = option(argc, argv, "--port", 8000);
    primary_options options;
    // A crash loop's cap, lowered from the default 10 so that --crash gives up within a
    // second. With the defaults, workers failing as they start are given up on after 10
    // restarts of one slot in a row: some 11 s of backoff.
    if (crash) options.restart.max_restarts = 3;
    const int code = run<proto>(
        argc, argv, [workers](primary<proto>& p) { return primary_main(p, workers); },
        [port, crash](worker<proto>& w) { return crash ? fail_at_start(w) : serve(w, port); }, options);
    // Only the primary gets here: a forked worker ends inside run().
    std::printf("Primary %d stopped: exit code %d\n", ::getpid(), code);
    return code;
}
