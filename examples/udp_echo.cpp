// udp_echo: Node's dgram in a cluster. Every worker receives datagrams on one UDP port and
// answers each with "<its pid> <the datagram>", the socket shared by every worker (as Node
// does) or one per worker with SO_REUSEPORT.
//   ./udp_echo [--help] [--workers N] [--port P] [--host A] [--schedule shared|reuseport]
//     N: workers (default, and 0: one per CPU); P: port (default 41234; 0: the kernel picks
//     one); A: address (default 127.0.0.1; ::1 for IPv6)
//   then: echo hello | nc -u -w1 127.0.0.1 41234     answered "<pid> hello"
// SIGTERM or Ctrl-C stops it gracefully (exit code 0), each worker printing how many it
// answered; SIGHUP replaces the workers one by one; SIGTTIN / SIGTTOU add or remove one.
#include <cluster/cluster.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

using namespace cluster;

using proto = protocol<>;  // the workers take no messages

// What the command line chose. The workers get it through run(), from main().
struct settings {
    unsigned workers = 0;
    udp_endpoint where;
    cluster::schedule how = schedule::shared;
};

// The answer is built in place: the pid first, the datagram received right behind it, and
// the whole sent back. The buffer holds the largest datagram, so none is truncated.
task<void> worker_main(worker<proto>& w, const settings& s) {
    auto socket = co_await w.listen(s.where, s.how);
    const std::string pid = std::to_string(::getpid()) + " ";
    std::array<char, 65536 + 16> buffer{};
    std::copy(pid.begin(), pid.end(), buffer.begin());
    const auto payload = std::span(buffer).subspan(pid.size());
    std::uint64_t answered = 0;
    for (;;) {
        auto d = co_await socket.receive_from(payload);
        // listener_closed: disconnected (a stop, a reload, a scale-down).
        if (!d && d.error() == errc::listener_closed) break;
        if (!d) {
            std::fprintf(stderr, "worker %u: receive: %s\n", w.id(), d.error().message().c_str());
            if (d.error() == errc::datagram_truncated) continue;
            break;
        }
        auto sent = co_await socket.send_to(std::span(buffer).first(pid.size() + d->size), d->from);
        if (sent)
            ++answered;
        else
            std::fprintf(stderr, "worker %u: send to %s: %s\n", w.id(), d->from.to_string().c_str(),
                         sent.error().message().c_str());
    }
    std::printf("worker %u (pid %d): %llu datagrams answered\n", w.id(), ::getpid(),
                static_cast<unsigned long long>(answered));
    std::fflush(stdout);
}

// One line per thing the cluster did.
void print(const event<proto>& e, const settings& s, bool& listening_shown) {
    if (auto* l = e.get_if<listening_event>(); l && !listening_shown) {
        listening_shown = true;  // every worker has the same port (port 0 included): say it once
        const bool v6 = l->family == AF_INET6;
        std::printf("Listening on %s %s%s%s:%u (%s, %u worker%s)\n", l->address_type(), v6 ? "[" : "",
                    l->address.c_str(), v6 ? "]" : "", l->port, to_string(s.how), s.workers, s.workers == 1 ? "" : "s");
    } else if (auto* o = e.get_if<online_event>()) {
        std::printf("Worker %u (pid %d) online\n", o->worker_id, o->pid);
    } else if (auto* x = e.get_if<exit_event>()) {
        std::printf("Worker %u (pid %d) exited: %s\n", x->worker_id, x->pid, x->status.to_string().c_str());
    } else if (auto* g = e.get_if<gave_up_event>()) {
        std::printf("Giving up: %s\n", g->what.c_str());
    }
}

// Never returns: a stop signal cancels it, and run() then stops the workers.
task<void> primary_main(primary<proto>& p, const settings& s) {
    std::printf("Primary %d running\n", ::getpid());
    co_await p.scale(s.workers);
    bool listening_shown = false;
    for (;;) {
        auto e = co_await p.next_event();
        print(e, s, listening_shown);
    }
}

// The text after `flag` on the command line, or `fallback`.
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

void print_usage(std::FILE* to, const char* program) {
    std::fprintf(to,
                 "usage: %s [--workers 0..1024] [--port 0..65535] [--host ADDRESS] [--schedule shared|reuseport]\n"
                 "  One UDP echo worker per CPU (--workers 0) on 127.0.0.1:41234, answering each datagram\n"
                 "  with \"<its pid> <the datagram>\". shared (the default): every worker receives from one\n"
                 "  socket; reuseport: each from its own, the kernel spreading the senders.\n"
                 "  SIGTERM or Ctrl-C stops it gracefully; SIGHUP replaces the workers; SIGTTIN / SIGTTOU\n"
                 "  add or remove one.\n",
                 program);
}

bool asks_for_help(int argc, char** argv) {
    return std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; });
}

std::optional<settings> parse_settings(int argc, char** argv) {
    const auto workers = number(option(argc, argv, "--workers", "0"), 1024);
    const auto how = parse_schedule(option(argc, argv, "--schedule", "shared"));
    const auto port = number(option(argc, argv, "--port", "41234"), 65535);
    if (!workers || !port || (how != schedule::shared && how != schedule::reuseport)) return std::nullopt;
    try {
        settings s;
        s.workers = *workers == 0 ? cpu_count() : *workers;
        s.how = *how;
        s.where = endpoint::udp(option(argc, argv, "--host", "127.0.0.1"), static_cast<std::uint16_t>(*port));
        return s;
    } catch (const std::system_error&) {
        return std::nullopt;  // not a numeric address
    }
}

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // whole lines, as they happen, even into a pipe
    if (asks_for_help(argc, argv)) {
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
    // Only the primary gets here: a forked worker ends inside run().
    std::printf("Primary %d stopped: exit code %d\n", ::getpid(), code);
    return code;
}
