// cluster::detail control answers: what the control socket says back — one JSON object on one
// line: an error, a command's outcome, or the cluster's status with each worker's rates.
#pragma once

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include <cluster/detail/status_rates.hpp>
#include <cluster/detail/utf8.hpp>
#include <cluster/status.hpp>

namespace cluster::detail {

// Writes one JSON object, member by member, nested objects and arrays included. The core
// writes its few answers itself rather than need Boost.JSON's compiled part: it stays headers
// and liburing. Text is made well-formed UTF-8 (a worker's exit reason, an error naming a path).
class json_writer {
public:
    json_writer() { out_.push_back('{'); }

    json_writer& string(std::string_view key, std::string_view text) {
        name(key);
        quoted(text);
        return *this;
    }
    json_writer& count(std::string_view key, std::uint64_t n) {
        name(key);
        char buf[24];
        out_.append(buf, std::to_chars(buf, buf + sizeof buf, n).ptr);
        return *this;
    }
    // To the millionth: more would be noise. JSON has no NaN or infinity: they are null.
    json_writer& number(std::string_view key, double x) {
        name(key);
        if (!std::isfinite(x)) {
            out_.append("null");
            return *this;
        }
        char buf[64];
        out_.append(buf, std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed, 6).ptr);
        return *this;
    }
    json_writer& boolean(std::string_view key, bool b) {
        name(key);
        out_.append(b ? "true" : "false");
        return *this;
    }
    // A member that is an object (or an array's next element, with no key), until close().
    json_writer& object(std::string_view key = {}) {
        name(key);
        out_.push_back('{');
        first_ = true;
        return *this;
    }
    json_writer& array(std::string_view key) {
        name(key);
        out_.push_back('[');
        first_ = true;
        return *this;
    }
    json_writer& close_object() {
        out_.push_back('}');
        first_ = false;
        return *this;
    }
    json_writer& close_array() {
        out_.push_back(']');
        first_ = false;
        return *this;
    }

    // The object, closed, and a newline: one answer.
    [[nodiscard]] std::string line() {
        out_.append("}\n");
        return std::move(out_);
    }

private:
    void name(std::string_view key) {
        if (!std::exchange(first_, false)) out_.push_back(',');
        if (key.empty()) return;
        quoted(key);
        out_.push_back(':');
    }

    void quoted(std::string_view text) {
        std::string valid;
        append_utf8_replacing(valid, text);
        out_.push_back('"');
        for (const char c : valid) {
            switch (c) {
            case '"': out_.append("\\\""); break;
            case '\\': out_.append("\\\\"); break;
            case '\n': out_.append("\\n"); break;
            case '\t': out_.append("\\t"); break;
            default:
                if (static_cast<unsigned char>(c) < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    out_.append(buf);
                } else {
                    out_.push_back(c);
                }
            }
        }
        out_.push_back('"');
    }

    std::string out_;
    bool first_ = true;
};

inline double seconds_of(std::chrono::steady_clock::duration d) noexcept {
    return std::chrono::duration<double>(d).count();
}

// {"ok":false,"error":...}: a request refused, or a command that failed.
inline std::string control_error(std::string_view what) {
    return json_writer().boolean("ok", false).string("error", what).line();
}

// The status answer: the cluster's figures, and each worker's, with its rates over `window`
// seconds since `before` (see rates_of()).
inline std::string status_answer(const cluster_status& s, const cluster_status* before, double window) {
    json_writer w;
    w.boolean("ok", true)
        .count("primary_pid", static_cast<std::uint64_t>(s.primary_pid))
        .number("uptime_seconds", seconds_of(s.uptime))
        .number("window_seconds", before ? window : 0.0)
        .count("workers_wanted", s.workers_wanted)
        .count("restarts", s.restarts)
        .count("hangs_killed", s.hangs_killed)
        .count("reloads", s.reloads)
        .number("primary_cpu_seconds", s.primary_cpu_seconds)
        .count("primary_rss_bytes", s.primary_rss_bytes);
    w.object("exits");
    for (const auto& [reason, n] : s.exits) w.count(reason, n);
    w.close_object().array("workers");
    for (const auto& worker : s.workers) {
        const auto rates = rates_of(worker, before, window);
        w.object()
            .count("id", worker.id)
            .count("slot", worker.slot)
            .count("pid", static_cast<std::uint64_t>(worker.pid))
            .string("state", to_string(worker.state))
            .number("uptime_seconds", seconds_of(worker.uptime))
            .count("restarts", worker.restarts)
            .number("cpu_seconds", worker.cpu_seconds)
            .number("cpu_percent", rates.cpu_percent)
            .count("rss_bytes", worker.rss_bytes)
            .count("connections", worker.connections_open)
            .count("connections_held", worker.connections_held)
            .number("messages_per_second", rates.messages_per_second)
            .count("messages_sent", worker.counts.messages_sent)
            .count("messages_received", worker.counts.messages_received)
            .number("heartbeat_rtt_ms", static_cast<double>(worker.heartbeat_rtt.count()) / 1000)
            .close_object();
    }
    w.close_array();
    return w.line();
}

}  // namespace cluster::detail
