// cluster::detail::relay_lines(): a silent worker's stdout or stderr, copied to the primary's
// line by line, each line prefixed and written whole, so workers' lines never interleave.
#pragma once

#include <cstddef>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/transfer.hpp>

namespace cluster::detail {

// The most a relay writes at once: a pipe write of up to PIPE_BUF is never split, and past
// this a line is written alone.
inline constexpr std::size_t relay_chunk = 4096;

// The longest line a relay writes as one. A worker that writes on and on without a newline
// must not grow the primary's memory without bound: once a line is longer, this much of it is
// written as a line of its own, and the rest follows as the next line.
inline constexpr std::size_t relay_line_limit = 64 * 1024;

// Where to cut a line longer than relay_line_limit: at the limit, or up to 3 bytes before, so
// that a UTF-8 character is not split across two lines.
inline std::size_t relay_cut(std::string_view text) noexcept {
    const auto continuation = [&](std::size_t i) { return (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80; };
    for (std::size_t cut = relay_line_limit; cut > relay_line_limit - 4; --cut)
        if (!continuation(cut)) return cut;
    return relay_line_limit;  // not UTF-8 text: cut anywhere
}

// What a relay has to write, from what the worker wrote: its lines, prefixed and gathered
// into writes of at most relay_chunk (a longer line alone), and the start of the next line.
class relay_buffer {
public:
    explicit relay_buffer(std::string prefix) : prefix_(std::move(prefix)) {}

    // The worker's next bytes.
    void take(std::string_view bytes) {
        partial_.append(bytes);
        std::string_view rest(partial_);
        for (std::size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1))
            add_line(rest.substr(0, nl));
        while (rest.size() > relay_line_limit) rest.remove_prefix(add_piece(rest));
        partial_.erase(0, partial_.size() - rest.size());
    }

    // The worker's stream ended: a last line without a newline gets one.
    void finish() {
        if (!partial_.empty()) add_line(partial_);
        partial_.clear();
    }

    // The writes due, in order; the buffer forgets them.
    std::vector<std::string> take_writes() { return std::exchange(writes_, {}); }

    // The start of a line whose end has not come yet.
    [[nodiscard]] std::size_t unfinished() const noexcept { return partial_.size(); }

private:
    // A line, in pieces if it is longer than relay_line_limit.
    void add_line(std::string_view text) {
        while (text.size() > relay_line_limit) text.remove_prefix(add_piece(text));
        add_write(text);
    }

    // The first piece of a line longer than relay_line_limit, as a line; returns its length.
    std::size_t add_piece(std::string_view text) {
        const std::size_t cut = relay_cut(text);
        add_write(text.substr(0, cut));
        return cut;
    }

    // One line of output, prefixed, in the last write if it fits there.
    void add_write(std::string_view text) {
        const std::size_t size = prefix_.size() + text.size() + 1;
        if (writes_.empty() || writes_.back().size() + size > relay_chunk) writes_.emplace_back();
        writes_.back().append(prefix_).append(text).push_back('\n');
    }

    std::string prefix_;
    std::string partial_;
    std::vector<std::string> writes_;
};

// Writes what is due. A write that fails — EPIPE when nobody reads the primary's output any
// more, ENOSPC on a full disk — loses its lines and nothing else: the relay reads on, so the
// worker never blocks on a full pipe, and it does not try those lines again, so it never spins.
// The next lines are tried afresh: a disk may get space back.
inline io::task<void> write_lines(int to, relay_buffer& lines) {
    const auto writes = lines.take_writes();
    for (const auto& w : writes) (void)co_await io::write_all(to, std::as_bytes(std::span(w)));
}

// Copies lines from `from` to `to` until `from` ends or `stop` is asked; a last line without
// a newline gets one.
inline io::task<void> relay_lines(int from, int to, std::string prefix, std::stop_token stop) {
    relay_buffer lines(std::move(prefix));
    char buf[relay_chunk];
    for (;;) {
        auto n = co_await io::read(from, std::span(buf)).with_stop_token(stop);
        if (!n || *n == 0) break;
        lines.take(std::string_view(buf, *n));
        co_await write_lines(to, lines);
    }
    lines.finish();
    co_await write_lines(to, lines);
}

}  // namespace cluster::detail
