// clusterctl's status table: the control socket's status answer as a person reads it — a line
// about the primary, then a row a worker (id, pid, state, uptime, restarts, CPU, RSS, connections, messages/s).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include <boost/json.hpp>

namespace clusterctl {

inline double number_of(const boost::json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_number() ? v->to_number<double>() : 0.0;
}

// 42s, 5m03s, 1h02m, 3d04h.
inline std::string duration_text(double seconds) {
    const auto s = static_cast<std::uint64_t>(seconds);
    char buf[32];
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%llus", static_cast<unsigned long long>(s));
    else if (s < 3600)
        std::snprintf(buf, sizeof buf, "%llum%02llus", static_cast<unsigned long long>(s / 60),
                      static_cast<unsigned long long>(s % 60));
    else if (s < 86400)
        std::snprintf(buf, sizeof buf, "%lluh%02llum", static_cast<unsigned long long>(s / 3600),
                      static_cast<unsigned long long>(s / 60 % 60));
    else
        std::snprintf(buf, sizeof buf, "%llud%02lluh", static_cast<unsigned long long>(s / 86400),
                      static_cast<unsigned long long>(s / 3600 % 24));
    return buf;
}

// 812 KiB, 12.4 MiB, 1.1 GiB.
inline std::string bytes_text(double bytes) {
    char buf[32];
    if (bytes < 1024.0 * 1024)
        std::snprintf(buf, sizeof buf, "%.0f KiB", bytes / 1024);
    else if (bytes < 1024.0 * 1024 * 1024)
        std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024));
    else
        std::snprintf(buf, sizeof buf, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
    return buf;
}

// The table, a line each ending with `eol` ("\n"; "\x1b[K\n" to clear what a redraw leaves).
inline std::string status_table(const boost::json::object& status, const char* eol = "\n") {
    std::string out;
    char line[256];
    const auto& workers = status.at("workers").as_array();
    const double window = number_of(status, "window_seconds");
    const std::string over = window > 0 ? "rates over " + duration_text(window + 0.5) : "rates over each worker's life";
    std::snprintf(line, sizeof line, "primary %.0f, up %s: %zu of %.0f workers, %.0f restarts, %.0f reloads; %s%s",
                  number_of(status, "primary_pid"), duration_text(number_of(status, "uptime_seconds")).c_str(),
                  workers.size(), number_of(status, "workers_wanted"), number_of(status, "restarts"),
                  number_of(status, "reloads"), over.c_str(), eol);
    out += line;
    std::snprintf(line, sizeof line, "%4s  %-8s %-9s %8s %8s %6s %10s %6s %8s%s", "ID", "PID", "STATE", "UPTIME",
                  "RESTARTS", "CPU%", "RSS", "CONNS", "MSG/S", eol);
    out += line;
    for (const auto& v : workers) {
        const auto& w = v.as_object();
        const auto* state = w.if_contains("state");
        std::snprintf(line, sizeof line, "%4.0f  %-8.0f %-9s %8s %8.0f %6.1f %10s %6.0f %8.1f%s", number_of(w, "id"),
                      number_of(w, "pid"), state && state->is_string() ? state->as_string().c_str() : "?",
                      duration_text(number_of(w, "uptime_seconds")).c_str(), number_of(w, "restarts"),
                      number_of(w, "cpu_percent"), bytes_text(number_of(w, "rss_bytes")).c_str(),
                      number_of(w, "connections"), number_of(w, "messages_per_second"), eol);
        out += line;
    }
    return out;
}

}  // namespace clusterctl
