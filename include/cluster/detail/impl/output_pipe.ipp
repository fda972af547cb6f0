// cluster::detail::output_queue's and pipe_lines()'s definitions. Inline in a header-only
// build; compiled once into cluster::core otherwise.
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include <cluster/detail/line_splitter.hpp>
#include <cluster/detail/output_pipe.hpp>
#include <cluster/io/ops.hpp>

namespace cluster::detail {

CLUSTER_DECL void output_queue::push(std::string_view text, line_end end) {
    lines_.push(output_line{worker_id_, slot_, stream_, std::string(text), end});
}

CLUSTER_DECL io::task<bool> output_queue::room() {
    while (lines_.queued_cost() > bound_) {
        const bool taken = co_await taken_.next();
        if (!taken) co_return false;
    }
    co_return true;
}

CLUSTER_DECL void output_queue::worker_exited() noexcept {
    // The most a full pipe's lines weigh: each byte a line of its own.
    bound_ += pipe_capacity_ * (sizeof(output_line) + 1);
    taken_.notify();
}

CLUSTER_DECL io::task<std::optional<output_line>> output_queue::take() {
    auto line = co_await lines_.take();
    if (line) taken_.notify();
    co_return line;
}

// line_splitter's lines, into the queue. A named type: a lambda's would have no linkage, and
// this one is part of a coroutine frame in an inline function.
struct push_to {
    output_queue& q;
    void operator()(std::string_view text, line_end end) const { q.push(text, end); }
};

// Closes the queue however the reading ends, even with its task destroyed where it stood (the
// primary going away): takers are not left waiting for lines that will never come.
struct close_at_end {
    output_queue& q;
    ~close_at_end() { q.close(); }
};

CLUSTER_DECL io::task<void> pipe_lines(int from, output_queue& q) {
    const close_at_end closing{q};
    line_splitter lines;
    const push_to push{q};
    char buf[4096];
    for (;;) {
        const bool room = co_await q.room();
        if (!room) break;
        auto n = co_await io::read(from, std::span(buf));
        if (!n || *n == 0) break;
        lines.take(std::string_view(buf, *n), push);
    }
    lines.finish(push);
}

}  // namespace cluster::detail
