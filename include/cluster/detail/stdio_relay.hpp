// cluster::detail::relay_lines(): a silent worker's stdout or stderr, copied to the primary's
// line by line, each line prefixed and written whole, so workers' lines never interleave.
#pragma once

#include <cstddef>
#include <span>
#include <stop_token>
#include <string>

#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/transfer.hpp>

namespace cluster::detail {

// The most a relay writes at once: a pipe write of up to PIPE_BUF is never split, and past
// this a line is written alone.
inline constexpr std::size_t relay_chunk = 4096;

// Copies lines from `from` to `to` until `from` ends or `stop` is asked; a last line without
// a newline gets one.
inline io::task<void> relay_lines(int from, int to, std::string prefix, std::stop_token stop) {
    std::string partial, out;
    char buf[relay_chunk];
    for (;;) {
        auto n = co_await io::read(from, std::span(buf)).with_stop_token(stop);
        if (!n || *n == 0) break;
        partial.append(buf, *n);
        std::size_t start = 0;
        for (std::size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
            if (out.size() + prefix.size() + nl + 1 - start > relay_chunk) {
                (void)co_await io::write_all(to, std::as_bytes(std::span(out)));
                out.clear();
            }
            out.append(prefix).append(partial, start, nl + 1 - start);
        }
        partial.erase(0, start);
        (void)co_await io::write_all(to, std::as_bytes(std::span(out)));
        out.clear();
    }
    if (!partial.empty()) out.append(prefix).append(partial).append("\n");
    (void)co_await io::write_all(to, std::as_bytes(std::span(out)));
}

}  // namespace cluster::detail
