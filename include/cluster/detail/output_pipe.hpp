// cluster::detail::output_queue and pipe_lines(): a worker's stream piped to the primary's code —
// its lines not taken yet, within a bound, and the task that reads them from the pipe.
#pragma once

#include <cluster/config.hpp>

#include <fcntl.h>

#include <cstddef>
#include <optional>
#include <string_view>

#include <cluster/io/detail/notice.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/task.hpp>
#include <cluster/output_line.hpp>

namespace cluster::detail {

// Filled by pipe_lines(), emptied by worker_output. Past its bound the reader waits, and the
// worker's writes with it once its pipe is full: nothing is dropped.
class output_queue {
public:
    // pipe_capacity: what the worker's pipe holds, which its exit lets in past the bound.
    // The bound is max_unread plus the lines of one read (4 KiB of output).
    output_queue(unsigned worker_id, unsigned slot, stdio_stream stream, std::size_t max_unread,
                 std::size_t pipe_capacity) noexcept
        : worker_id_(worker_id), slot_(slot), stream_(stream), bound_(max_unread), pipe_capacity_(pipe_capacity) {}
    output_queue(const output_queue&) = delete;
    output_queue& operator=(const output_queue&) = delete;

    // ---- the reader's side ----

    CLUSTER_DECL void push(std::string_view text, line_end end);

    // Once the queue is within its bound (at once if it is); false if the task is asked to
    // stop first.
    CLUSTER_DECL io::task<bool> room();

    // The worker has exited: what is left in its pipe may come in past the bound, so that it
    // is read to its end now and none of it is lost with the pipe.
    CLUSTER_DECL void worker_exited() noexcept;

    // The stream has ended: what is queued can still be taken, then nothing.
    void close() noexcept { lines_.close(); }

    // ---- the primary's code's side ----

    // The next line, waiting for one; nothing once closed and empty, or if the task is asked
    // to stop first.
    CLUSTER_DECL io::task<std::optional<output_line>> take();

    [[nodiscard]] bool ended() const noexcept { return lines_.closed(); }
    [[nodiscard]] std::size_t unread_bytes() const noexcept { return lines_.queued_cost(); }
    [[nodiscard]] std::size_t unread_lines() const noexcept { return lines_.size(); }

    // What a line weighs toward the bound: its text and its place in the queue.
    static std::size_t weight(const output_line& l) noexcept { return sizeof(output_line) + l.text.size(); }

private:
    const unsigned worker_id_;
    const unsigned slot_;
    const stdio_stream stream_;
    std::size_t bound_;
    const std::size_t pipe_capacity_;
    io::mailbox<output_line> lines_{&output_queue::weight};
    io::detail::notice taken_;
};

// What the pipe `fd` holds before a writer waits; Linux's default if it cannot say.
inline std::size_t pipe_capacity(int fd) noexcept {
    const int size = ::fcntl(fd, F_GETPIPE_SZ);
    return size > 0 ? static_cast<std::size_t>(size) : 64 * 1024;
}

// Reads lines from `from` into `q` until `from` ends or the task is asked to stop, waiting
// whenever `q` is past its bound; then the line the worker left without a newline. The queue
// is closed however it ends.
CLUSTER_DECL io::task<void> pipe_lines(int from, output_queue& q);

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/output_pipe.ipp>
#endif
