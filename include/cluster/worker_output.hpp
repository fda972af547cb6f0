// cluster::worker_output: a worker's stdout or stderr piped to the primary's code
// (output_mode::pipe), read a line at a time, as long as anyone holds it.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include <cluster/detail/output_pipe.hpp>
#include <cluster/io/task.hpp>
#include <cluster/output_line.hpp>

namespace cluster {

// A copy shares the same lines: each line goes to one taker. It keeps them past the worker's
// exit, and past its handle's, until they are taken.
class worker_output {
public:
    explicit worker_output(std::shared_ptr<detail::output_queue> lines) noexcept : lines_(std::move(lines)) {}

    // The worker's next line, in the order it wrote them, waiting for one if needed. Nothing
    // once the stream has ended (the worker and whatever shared its stream have exited) and
    // every line was taken, or if the awaiting task is asked to stop first.
    [[nodiscard]] io::task<std::optional<output_line>> next_line() const { return take(lines_); }

    // True once the stream has ended: the unread lines are all there will be.
    [[nodiscard]] bool ended() const noexcept { return lines_->ended(); }
    // The lines not taken yet, and what they weigh toward stdio_options::max_unread.
    [[nodiscard]] std::size_t unread_lines() const noexcept { return lines_->unread_lines(); }
    [[nodiscard]] std::size_t unread_bytes() const noexcept { return lines_->unread_bytes(); }

private:
    // The lines are held by the coroutine itself: next_line()'s task may outlive this object.
    static io::task<std::optional<output_line>> take(std::shared_ptr<detail::output_queue> lines) {
        co_return co_await lines->take();
    }

    std::shared_ptr<detail::output_queue> lines_;
};

}  // namespace cluster
