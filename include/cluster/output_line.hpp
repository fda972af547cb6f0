// cluster::output_line: one line of a worker's piped stdout or stderr as the primary reads it —
// whose it is, which stream, and how it ended (a newline, the length limit, or the stream's end).
#pragma once

#include <cstddef>
#include <string>

namespace cluster {

enum class stdio_stream { out, err };  // the worker's stdout, its stderr

inline const char* to_string(stdio_stream s) noexcept { return s == stdio_stream::out ? "stdout" : "stderr"; }

// The longest line given whole, relayed or piped. A worker that writes on and on without a
// newline must not grow the primary's memory without bound: past this, a line is cut (never
// inside a UTF-8 character) and the rest follows as the next line.
inline constexpr std::size_t output_line_limit = 64 * 1024;

enum class line_end {
    newline,  // the worker ended it with '\n'
    cut,      // it reached output_line_limit: the next line goes on with the rest
    eof,      // the stream ended without a last newline
};

inline const char* to_string(line_end e) noexcept {
    switch (e) {
    case line_end::newline: return "newline";
    case line_end::cut: return "cut";
    case line_end::eof: return "eof";
    }
    return "unknown";
}

struct output_line {
    unsigned worker_id = 0;
    unsigned slot = 0;  // the slot the worker was started for
    stdio_stream stream = stdio_stream::out;
    std::string text;  // without its newline
    line_end end = line_end::newline;
};

}  // namespace cluster
