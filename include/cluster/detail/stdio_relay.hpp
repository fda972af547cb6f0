// cluster::detail::relay_lines(): a worker's relayed stdout or stderr, copied to the primary's
// line by line, each line formatted for the log and written whole, so workers' lines never
// interleave.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cluster/detail/line_splitter.hpp>
#include <cluster/detail/log_line.hpp>
#include <cluster/detail/log_tap.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/transfer.hpp>

namespace cluster::detail {

// The most a relay writes at once: a pipe write of up to PIPE_BUF is never split, and past
// this a line is written alone.
inline constexpr std::size_t relay_chunk = 4096;

// What a relay has to write, from what the worker wrote: its lines (cut as line_splitter
// cuts them), formatted as the log says and gathered into writes of at most relay_chunk (a
// longer line alone). A line's time is when the primary read it.
class relay_buffer {
public:
    relay_buffer(log_format format, line_source from) noexcept : format_(format), from_(from) {}

    // The worker's next bytes.
    void take(std::string_view bytes) {
        const auto now = std::chrono::system_clock::now();
        lines_.take(bytes, [&](std::string_view text, line_end end) { add_write(text, end, now); });
    }

    // The worker's stream ended: a last line without a newline gets one.
    void finish() {
        const auto now = std::chrono::system_clock::now();
        lines_.finish([&](std::string_view text, line_end end) { add_write(text, end, now); });
    }

    // The writes due, in order; the buffer forgets them.
    std::vector<std::string> take_writes() { return std::exchange(writes_, {}); }

    // The start of a line whose end has not come yet.
    [[nodiscard]] std::size_t unfinished() const noexcept { return lines_.unfinished(); }

private:
    // One line of output, formatted, in the last write if it fits there. A line cut for its
    // length is written as a line of its own.
    void add_write(std::string_view text, line_end end, std::chrono::system_clock::time_point now) {
        line_.clear();
        append_log_line(line_, format_, from_, text, end, now);
        if (writes_.empty() || writes_.back().size() + line_.size() > relay_chunk) writes_.emplace_back();
        writes_.back().append(line_);
    }

    log_format format_;
    line_source from_;
    std::string line_;  // the line being formatted, kept for its capacity
    line_splitter lines_;
    std::vector<std::string> writes_;
};

// Writes what is due. A write that fails — EPIPE when nobody reads the primary's output any
// more, ENOSPC on a full disk — loses its lines and nothing else: the relay reads on, so the
// worker never blocks on a full pipe, and it does not try those lines again, so it never spins.
// The next lines are tried afresh: a disk may get space back. A tap gets them first, whatever
// becomes of the write.
inline io::task<void> write_lines(int to, relay_buffer& lines, log_tap* tap) {
    const auto writes = lines.take_writes();
    for (const auto& w : writes) {
        if (tap) tap->copy(w);
        (void)co_await io::write_all(to, std::as_bytes(std::span(w)));
    }
}

// Copies lines from `from` to `to` (and to `tap`'s followers), formatted as `format` says for
// `source`, until `from` ends or `stop` is asked; a last line without a newline gets one.
inline io::task<void> relay_lines(int from, int to, log_format format, line_source source, std::stop_token stop,
                                  log_tap* tap = nullptr) {
    relay_buffer lines(format, source);
    char buf[relay_chunk];
    for (;;) {
        auto n = co_await io::read(from, std::span(buf)).with_stop_token(stop);
        if (!n || *n == 0) break;
        lines.take(std::string_view(buf, *n));
        co_await write_lines(to, lines, tap);
    }
    lines.finish();
    co_await write_lines(to, lines, tap);
}

}  // namespace cluster::detail
