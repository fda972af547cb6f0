// chat's settings: the command line read into what the primary and its workers need, and the
// usage that explains it.
#pragma once

#include <cluster/cluster.hpp>
#include <cluster/redis.hpp>
#include <cluster/websocket.hpp>

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace chat {

struct settings {
    unsigned workers = 0;
    cluster::endpoint where;
    cluster::schedule how = cluster::schedule::round_robin;
    cluster::listener_options listening;  // with --sticky-key, what keeps a client on its worker
    cluster::redis::options redis;
    std::string redis_text;  // HOST:PORT as given, for the log
    cluster::websocket::options ws;
    std::string instance;  // this primary and its workers, among every instance sharing the Redis
    cluster::log_options log;
    std::string control;                       // --control: the control socket's path, for clusterctl
    std::optional<cluster::endpoint> metrics;  // where the primary serves /metrics; none: nowhere
};

inline std::string_view option(int argc, char** argv, std::string_view flag, std::string_view fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return argv[i + 1];
    return fallback;
}

inline std::optional<unsigned long> number(std::string_view text, unsigned long min, unsigned long max) {
    unsigned long n = 0;
    const auto [end, err] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (err != std::errc() || end != text.data() + text.size() || n < min || n > max) return std::nullopt;
    return n;
}

inline std::optional<cluster::log_format> log_format(std::string_view name) {
    if (name == "text") return cluster::log_format::text;
    if (name == "json") return cluster::log_format::json;
    return std::nullopt;
}

// HOST:PORT, HOST a numeric address.
inline std::optional<cluster::endpoint> host_port(std::string_view text) {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    const auto port = number(text.substr(colon + 1), 1, 65535);
    if (!port) return std::nullopt;
    try {
        return cluster::endpoint::tcp(std::string(text.substr(0, colon)), static_cast<std::uint16_t>(*port));
    } catch (const std::system_error&) {
        return std::nullopt;
    }
}

// This host's name and the primary's pid: unique among the instances sharing a Redis, and
// new for a binary upgrade's successor, which must hear its predecessor's clients.
inline std::string instance_name() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return std::string(host) + "-" + std::to_string(::getpid());
}

inline std::optional<settings> parse_settings(int argc, char** argv) {
    settings s;
    const auto workers = number(option(argc, argv, "--workers", "0"), 0, 1024);
    const auto port = number(option(argc, argv, "--port", "8080"), 0, 65535);
    const auto how = cluster::parse_schedule(option(argc, argv, "--schedule", "round_robin"));
    const auto redis = host_port(option(argc, argv, "--redis", "127.0.0.1:6379"));
    const auto max_message = number(option(argc, argv, "--max-message", "65536"), 1, 1ul << 24);
    const auto send_queue = number(option(argc, argv, "--send-queue", "1048576"), 1, 1ul << 30);
    const auto key = cluster::net::parse_sticky_key(option(argc, argv, "--sticky-key", "address"));
    const auto format = log_format(option(argc, argv, "--log-format", "text"));
    const std::string_view metrics = option(argc, argv, "--metrics", "");
    const auto metrics_at = cluster::endpoint::parse(metrics);
    if (!metrics.empty() && !metrics_at) return std::nullopt;
    if (!workers || !port || !how || *how == cluster::schedule::custom || !redis || !max_message || !send_queue ||
        !key || (key->peeks() && *how != cluster::schedule::sticky) || !format)
        return std::nullopt;
    try {
        s.where = cluster::endpoint::tcp(option(argc, argv, "--host", "127.0.0.1"), static_cast<std::uint16_t>(*port));
    } catch (const std::system_error&) {
        return std::nullopt;
    }
    s.workers = *workers == 0 ? cluster::cpu_count() : static_cast<unsigned>(*workers);
    s.how = *how;
    s.listening.sticky = *key;
    s.listening.socket.defer_accept = std::chrono::seconds(1);  // HTTP's clients speak first
    s.redis.server = *redis;
    s.redis_text = option(argc, argv, "--redis", "127.0.0.1:6379");
    s.ws.max_message_bytes = *max_message;
    s.ws.max_send_queue_bytes = *send_queue;
    s.instance = instance_name();
    s.log = {std::string(option(argc, argv, "--log-file", "")), *format};
    s.control = option(argc, argv, "--control", "");
    if (!metrics.empty()) s.metrics = *metrics_at;
    return s;
}

// A log file, JSON lines or a control socket: the workers' output is relayed, so that each
// line is tagged with its worker and written whole, follows the primary into a reopened file,
// and reaches `clusterctl logs`.
inline cluster::primary_options primary_options_for(const settings& s) {
    cluster::primary_options o;
    o.log = s.log;
    o.control = s.control;
    o.metrics = s.metrics;
    o.silent = !s.log.file.empty() || s.log.format == cluster::log_format::json || !s.control.empty();
    return o;
}

inline void print_usage(std::FILE* to, const char* program) {
    std::fprintf(to,
                 "usage: %s [--host ADDRESS] [--port 0..65535] [--workers 0..1024] [--redis HOST:PORT]\n"
                 "         [--schedule round_robin|shared|reuseport|least_connections|...]\n"
                 "         [--sticky-key cookie:NAME|header:NAME|query:NAME] [--max-message BYTES]\n"
                 "         [--send-queue BYTES] [--log-file PATH] [--log-format text|json] [--control PATH]\n"
                 "         [--metrics HOST:PORT]\n"
                 "  A chat room on http://127.0.0.1:8080/, one worker per CPU (--workers 0), shared by\n"
                 "  every instance on the same Redis (default 127.0.0.1:6379).\n"
                 "  GET / the page; GET /ws a WebSocket: each text message goes to every client;\n"
                 "  GET /visits counts in Redis. A message past --max-message (64 KiB) closes with 1009;\n"
                 "  a client leaving --send-queue (1 MiB) unread is closed with 1008.\n"
                 "  --sticky-key (with --schedule sticky): a client keeps its worker by that cookie, header\n"
                 "  or query parameter, else by its address; the page gives each browser a cookie sid, so\n"
                 "  behind nginx: --schedule sticky --sticky-key cookie:sid.\n"
                 "  SIGHUP replaces the workers (their clients get 1012 and reconnect); SIGTERM or\n"
                 "  Ctrl-C stops (1001). --log-file: where the primary writes, reopened at SIGUSR1\n"
                 "  (logrotate); --log-format json: each worker's line as a JSON object (docs/logs.md).\n"
                 "  --control: a control socket at PATH for clusterctl, the workers' output then relayed\n"
                 "  through the primary for clusterctl logs.\n"
                 "  --metrics: the primary serves GET /metrics there (Prometheus's text format); off by default.\n",
                 program);
}

}  // namespace chat
