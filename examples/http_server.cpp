// http_server: the seed's "Clustered Node App" in C++. The primary forks one worker per CPU
// and keeps them running; every worker serves HTTP/1.1 (keep-alive, pipelining; parsed by
// llhttp, Node's own parser) on one port, the connections spread by the schedule chosen.
//   ./http_server [--help] [--workers N] [--port P] [--host A] [--fd NAME] [--schedule S]
//                 [--sticky-key KIND:NAME] [--header-timeout-ms H] [--request-timeout-ms R]
//                 [--log-file PATH] [--log-format text|json] [--control PATH] [--metrics M]
//                 [--cpu-affinity]
//     N: workers (default, and 0: one per CPU); P: port (default 8000; 0: the kernel picks one);
//     A: address (default 127.0.0.1); NAME: instead of A and P, the socket systemd passed by
//     that name (FileDescriptorName=, or its fd number; a socket passed on A:P serves --port P
//     too); S: round_robin (default), shared, reuseport, sticky
//     or least_connections; KIND:NAME: with sticky, what keeps a client on its worker instead
//     of its address (behind a proxy, every client has the proxy's): cookie:NAME, header:NAME
//     (of a list, the first: header:X-Forwarded-For) or query:NAME; H, R: the time a request's head (default 60000),
//     and the whole request (default 300000), may take from its first byte before the answer is 408 and the connection
//     closes, however slowly the bytes trickle in (0: no limit); PATH: the file the primary
//     writes, reopened at SIGUSR1 (docs/logs.md); json: each worker's line as a JSON object.
//     With either, the workers' output goes through the primary, which tags each line.
//     --control: the control socket clusterctl talks to (docs/control.md). M: where the primary
//     serves GET /metrics, Prometheus's text format (HOST:PORT, [V6]:PORT or unix:PATH; off by default)
//     --cpu-affinity: the worker of slot N runs on the primary's Nth CPU alone (counted round)
//   GET /       Hello, World!
//   GET /pid    the pid of the worker that answered
//   GET /json   that worker's status: a described struct, as JSON through Boost.JSON
//   GET /crash  the worker aborts, and the primary replaces it
// SIGTERM or Ctrl-C stops it gracefully (exit code 0): each worker answers the requests in
// progress, closes its connections and prints "worker <id> (pid <pid>): <C> connections,
// <R> requests". SIGHUP replaces the workers one by one (then "Reload done: <N> workers
// replaced"); SIGTTIN / SIGTTOU add or remove one.
#include <cluster/cluster.hpp>
#include <cluster/http.hpp>

#include <boost/describe.hpp>
#include <boost/json.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

using namespace cluster;
using namespace std::chrono_literals;

using proto = protocol<>;  // the workers take no messages

// What the command line chose. The workers get it through run(), from main().
struct settings {
    unsigned workers = 0;
    endpoint where;
    cluster::schedule how = schedule::round_robin;
    cluster::sticky_key key;  // sticky: what the primary peeks at in each request head
    http::limits limits;
    log_options log;
    std::string control;              // --control: the control socket's path, for clusterctl
    std::optional<endpoint> metrics;  // where the primary serves /metrics; none: nowhere
    bool cpu_affinity = false;        // --cpu-affinity: each worker pinned to a CPU
};

// GET /json: Boost.JSON turns any described struct into JSON.
struct json_status {
    std::string message = "Hello, World!";
    unsigned worker = 0;
    int pid = 0;
    std::uint64_t requests = 0;  // answered by this worker so far, this one included
};
BOOST_DESCRIBE_STRUCT(json_status, (), (message, worker, pid, requests))

// One worker's routes. The constant answers are formatted once, at its start; /json is
// serialized per request, into buffers that are reused: no request allocates.
class routes {
public:
    explicit routes(unsigned worker_id)
        : pid_("200 OK", "text/plain", std::to_string(::getpid())), status_{.worker = worker_id, .pid = ::getpid()} {}

    void operator()(const http::request& req, http::response& res) {
        ++served_;
        const route r = find(req.path());
        if (r == route::none) return res.send(not_found_);
        if (req.method != HTTP_GET && req.method != HTTP_HEAD) return res.send(not_allowed_);
        switch (r) {
        case route::hello: return res.send(hello_);
        case route::pid: return res.send(pid_);
        case route::json: return send_status(res);
        case route::crash: crash();
        case route::none: return;
        }
    }

    [[nodiscard]] std::uint64_t served() const noexcept { return served_; }

private:
    enum class route { hello, pid, json, crash, none };

    static route find(std::string_view path) noexcept {
        if (path == "/") return route::hello;
        if (path == "/pid") return route::pid;
        if (path == "/json") return route::json;
        if (path == "/crash") return route::crash;
        return route::none;
    }

    void send_status(http::response& res) {
        status_.requests = served_;
        std::array<unsigned char, 1024> memory;  // holds the JSON value: far more than it needs
        boost::json::monotonic_resource arena(memory.data(), memory.size());
        const boost::json::value value = boost::json::value_from(status_, &arena);
        json_.reset(&value);
        std::array<char, 256> text;  // the longest status is about 100 bytes
        res.send("200 OK", "application/json", json_.read(text.data(), text.size()));
    }

    [[noreturn]] void crash() const {
        std::fprintf(stderr, "worker %u (pid %d): GET /crash: aborting\n", status_.worker, status_.pid);
        std::abort();
    }

    const http::prepared_response hello_{"200 OK", "text/plain", "Hello, World!"};
    const http::prepared_response pid_;
    const http::prepared_response not_found_{"404 Not Found", "text/plain", "Not Found\n"};
    const http::prepared_response not_allowed_{"405 Method Not Allowed", "text/plain", "Method Not Allowed\n",
                                               "Allow: GET, HEAD\r\n"};
    json_status status_;
    boost::json::serializer json_;
    std::uint64_t served_ = 0;
};

task<void> worker_main(worker<proto>& w, const settings& s) {
    listener_options o;
    o.sticky = s.key;
    o.socket.defer_accept = 1s;  // HTTP's clients speak first: accepted with their request there
    auto connections = co_await w.listen(s.where, s.how, o);
    routes app(w.id());
    // Once the primary disconnects this worker (a stop, a reload, a scale-down), accept()
    // ends and the server drains: the requests in progress are answered, and then closed.
    http::server<routes> server(app, w.stop_token(), s.limits);
    for (;;) {
        auto stream = co_await connections.accept();
        if (stream) {
            server.serve(std::move(*stream));
            continue;
        }
        if (stream.error() == errc::listener_closed) break;
        // Out of file descriptors, say: wait for some to close rather than spin.
        std::fprintf(stderr, "worker %u: accept: %s\n", w.id(), stream.error().message().c_str());
        (void)co_await io::sleep_for(100ms).with_stop_token(w.stop_token());
    }
    co_await server.join();
    std::printf("worker %u (pid %d): %llu connections, %llu requests\n", w.id(), ::getpid(),
                static_cast<unsigned long long>(connections.accepted()), static_cast<unsigned long long>(app.served()));
    std::fflush(stdout);
}

// The seed's lines, from the primary's events.
class lifecycle {
public:
    explicit lifecycle(const settings& s) : settings_(s) {}

    void print(const event<proto>& e) {
        if (auto* o = e.get_if<online_event>()) {
            std::printf("Worker %d started\n", o->pid);
        } else if (auto* l = e.get_if<listening_event>()) {
            print_first_listening(*l);
        } else if (auto* x = e.get_if<exit_event>()) {
            last_exit_ = x->pid;
            if (x->reason != stop_reason::none) std::printf("Worker %d exited (%s)\n", x->pid, to_string(x->reason));
        } else if (e.is<restart_scheduled_event>()) {
            // It comes right after its worker's exit event.
            std::printf("Worker %d died. Restarting...\n", last_exit_);
        } else if (auto* g = e.get_if<gave_up_event>()) {
            std::printf("Giving up: %s\n", g->what.c_str());
        } else if (auto* r = e.get_if<reload_event>()) {
            // An operator who sent SIGHUP learns here that the rollout is over (or why not).
            if (r->ok)
                std::printf("Reload done: %u workers replaced\n", r->replaced);
            else
                std::printf("Reload stopped after %u workers: %s\n", r->replaced, r->what.c_str());
        }
    }

private:
    // Every worker listens; the address is the same for all (port 0 included: the kernel's
    // choice is shared), so it is said once.
    void print_first_listening(const listening_event& l) {
        if (listening_) return;
        listening_ = true;
        const bool v6 = l.family == AF_INET6;
        std::printf("Listening on http://%s%s%s:%u (%s, %u worker%s)\n", v6 ? "[" : "", l.address.c_str(),
                    v6 ? "]" : "", l.port, to_string(settings_.how), settings_.workers,
                    settings_.workers == 1 ? "" : "s");
    }

    const settings& settings_;
    pid_t last_exit_ = 0;
    bool listening_ = false;
};

// Never returns: a stop signal (or the restart policy giving up on a crash loop) cancels
// it, and run() then stops the workers.
task<void> primary_main(primary<proto>& p, const settings& s) {
    std::printf("Primary %d running\n", ::getpid());
    if (s.metrics) std::printf("Metrics on http://%s/metrics\n", p.metrics_endpoint().to_string().c_str());
    for (unsigned i = 0; i < s.workers; ++i) co_await p.fork();
    lifecycle log(s);
    for (;;) {
        auto e = co_await p.next_event();
        log.print(e);
    }
}

// The text after `flag` on the command line, or `fallback`.
std::string_view option(int argc, char** argv, std::string_view flag, std::string_view fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return argv[i + 1];
    return fallback;
}

bool has_flag(int argc, char** argv, std::string_view flag) {
    return std::any_of(argv + 1, argv + argc, [flag](std::string_view a) { return a == flag; });
}

std::optional<unsigned> number(std::string_view text, unsigned max) {
    unsigned n = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (err != std::errc() || end != text.data() + text.size() || n > max) return std::nullopt;
    return n;
}

// A day: far past any request's reasonable time, and it bounds the arithmetic.
constexpr unsigned max_timeout_ms = 24 * 60 * 60 * 1000;

// `flag`'s milliseconds, or `fallback`'s when it is absent.
std::optional<std::chrono::milliseconds> milliseconds(int argc, char** argv, std::string_view flag,
                                                      std::chrono::milliseconds fallback) {
    const std::string otherwise = std::to_string(fallback.count());
    const auto n = number(option(argc, argv, flag, otherwise), max_timeout_ms);
    if (!n) return std::nullopt;
    return std::chrono::milliseconds(*n);
}

// The socket systemd passed as `fd_name` if there is one, else host:port.
std::optional<endpoint> address(std::string_view host, std::optional<unsigned> port, std::string_view fd_name) {
    if (!fd_name.empty()) {
        auto inherited = endpoint::parse("fd:" + std::string(fd_name));
        return inherited ? std::optional<endpoint>(*inherited) : std::nullopt;
    }
    if (!port) return std::nullopt;
    try {
        return endpoint::tcp(host, static_cast<std::uint16_t>(*port));
    } catch (const std::system_error&) {
        return std::nullopt;
    }
}

// --metrics: none when empty; an endpoint; or nothing at all when the text is no endpoint.
std::optional<std::optional<endpoint>> metrics_address(std::string_view text) {
    if (text.empty()) return std::optional<endpoint>{};
    auto parsed = endpoint::parse(text);
    if (!parsed) return std::nullopt;
    return std::optional<endpoint>(*parsed);
}

void print_usage(std::FILE* to, const char* program) {
    std::fprintf(to,
                 "usage: %s [--workers 0..1024] [--port 0..65535] [--host ADDRESS] [--fd NAME]\n"
                 "         [--schedule round_robin|shared|reuseport|sticky|least_connections]\n"
                 "         [--sticky-key cookie:NAME|header:NAME|query:NAME]\n"
                 "         [--header-timeout-ms 0..%u] [--request-timeout-ms 0..%u]\n"
                 "         [--log-file PATH] [--log-format text|json] [--control PATH] [--metrics HOST:PORT]\n"
                 "         [--cpu-affinity]\n"
                 "  One HTTP/1.1 worker per CPU (--workers 0) on 127.0.0.1:8000, supervised by the primary;\n"
                 "  --fd: on the socket systemd passed by that name (socket activation) instead.\n"
                 "  --sticky-key (with --schedule sticky): a client keeps its worker by that cookie, header\n"
                 "  (header:X-Forwarded-For behind a proxy) or query parameter, else by its address.\n"
                 "  GET / says hello, /pid names the worker, /json is its status, /crash kills it.\n"
                 "  --metrics: the primary serves GET /metrics there (Prometheus's text format); off by default.\n"
                 "  --cpu-affinity: each worker runs on one CPU of the primary's, slot N on the Nth, counted round.\n"
                 "  SIGTERM or Ctrl-C stops it gracefully; SIGHUP replaces the workers; SIGTTIN / SIGTTOU\n"
                 "  add or remove one; SIGUSR1 reopens --log-file (logrotate). --control: a control socket\n"
                 "  at PATH for clusterctl (status, reload, scale, stop, upgrade, logs, top), the workers'\n"
                 "  output then relayed through the primary.\n",
                 program, max_timeout_ms, max_timeout_ms);
}

std::optional<log_format> parse_log_format(std::string_view name) {
    if (name == "text") return log_format::text;
    if (name == "json") return log_format::json;
    return std::nullopt;
}

bool asks_for_help(int argc, char** argv) { return has_flag(argc, argv, "--help") || has_flag(argc, argv, "-h"); }

std::optional<settings> parse_settings(int argc, char** argv) {
    settings s;
    const auto workers = number(option(argc, argv, "--workers", "0"), 1024);
    const auto how = parse_schedule(option(argc, argv, "--schedule", "round_robin"));
    const auto port = number(option(argc, argv, "--port", "8000"), 65535);
    const auto where = address(option(argc, argv, "--host", "127.0.0.1"), port, option(argc, argv, "--fd", ""));
    const auto header_timeout = milliseconds(argc, argv, "--header-timeout-ms", s.limits.header_timeout);
    const auto request_timeout = milliseconds(argc, argv, "--request-timeout-ms", s.limits.request_timeout);
    const auto key = parse_sticky_key(option(argc, argv, "--sticky-key", "address"));
    const auto format = parse_log_format(option(argc, argv, "--log-format", "text"));
    const auto metrics = metrics_address(option(argc, argv, "--metrics", ""));
    if (!workers || !how || how == schedule::custom || !where || !header_timeout || !request_timeout || !key ||
        !format || !metrics)
        return std::nullopt;
    if (key->peeks() && how != schedule::sticky) return std::nullopt;
    s.key = *key;
    s.workers = *workers == 0 ? cpu_count() : *workers;
    s.how = *how;
    s.where = *where;
    s.limits.header_timeout = *header_timeout;
    s.limits.request_timeout = *request_timeout;
    s.log = {std::string(option(argc, argv, "--log-file", "")), *format};
    s.control = option(argc, argv, "--control", "");
    s.metrics = *metrics;
    s.cpu_affinity = has_flag(argc, argv, "--cpu-affinity");
    return s;
}

// A log file, JSON lines or a control socket: the workers' output is relayed, so that each
// line is tagged with its worker and written whole, follows the primary into a reopened file,
// and reaches `clusterctl logs`.
primary_options primary_options_for(const settings& s) {
    primary_options o;
    o.log = s.log;
    o.control = s.control;
    o.metrics = s.metrics;
    o.cpu_affinity = s.cpu_affinity;
    o.silent = !s.log.file.empty() || s.log.format == log_format::json || !s.control.empty();
    return o;
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
        [&s](worker<proto>& w) { return worker_main(w, *s); }, primary_options_for(*s));
    // Only the primary gets here: a forked worker ends inside run().
    std::printf("Primary %d stopped: exit code %d\n", ::getpid(), code);
    return code;
}
