// cluster::detail::append_log_line(): one line as the primary writes it to its log — the
// worker's text prefixed "[worker N] ", or one JSON object with where and when it came from.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <string_view>

#include <cluster/detail/json_string.hpp>
#include <cluster/options.hpp>
#include <cluster/output_line.hpp>

namespace cluster::detail {

// Whose a line is. worker_id 0: the primary's own (a message of cluster's about its log).
struct line_source {
    unsigned worker_id = 0;
    unsigned slot = 0;
    pid_t pid = 0;
    stdio_stream stream = stdio_stream::out;
};

// RFC 3339 in UTC with milliseconds, "2024-05-01T12:00:00.123Z": what log tools sort and parse.
inline void append_rfc3339(std::string& out, std::chrono::system_clock::time_point t) {
    const auto millis = std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t whole = std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
    std::tm utc{};
    ::gmtime_r(&whole, &utc);
    char buf[32];
    const int n =
        std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                      utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis - whole * 1000));
    out.append(buf, static_cast<std::size_t>(n));
}

// {"time":…,"worker":…,"slot":…,"pid":…,"stream":…,"text":…,"end":…}, without worker and
// slot for the primary's own line.
inline void append_json_line(std::string& out, const line_source& from, std::string_view text, line_end end,
                             std::chrono::system_clock::time_point now) {
    out.append("{\"time\":\"");
    append_rfc3339(out, now);
    out.append("\"");
    if (from.worker_id != 0) {
        out.append(",\"worker\":").append(std::to_string(from.worker_id));
        out.append(",\"slot\":").append(std::to_string(from.slot));
    }
    out.append(",\"pid\":").append(std::to_string(from.pid));
    out.append(",\"stream\":\"").append(to_string(from.stream)).append("\",\"text\":");
    append_json_string(out, text);
    out.append(",\"end\":\"").append(to_string(end)).append("\"}\n");
}

// The line and its newline, in `format`. A text line is the worker's bytes as they came.
inline void append_log_line(std::string& out, log_format format, const line_source& from, std::string_view text,
                            line_end end, std::chrono::system_clock::time_point now) {
    if (format == log_format::json) return append_json_line(out, from, text, end, now);
    if (from.worker_id != 0) out.append("[worker ").append(std::to_string(from.worker_id)).append("] ");
    out.append(text).push_back('\n');
}

}  // namespace cluster::detail
