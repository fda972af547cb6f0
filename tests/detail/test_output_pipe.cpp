// detail::output_queue and pipe_lines() on a real pipe, written by the test itself without
// blocking: past its bound the reader stops and the pipe fills, so a writer would wait;
// taking lines lets it on; a worker's exit lets in what its pipe holds; a stop keeps the
// unfinished line and ends the queue.
#include <catch2/catch.hpp>

#include "support/descriptors.hpp"
#include "support/waiting.hpp"

#include <cluster/detail/output_pipe.hpp>
#include <cluster/io.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

using namespace cluster;
using cluster::detail::output_queue;
using support::bounded;

namespace {

constexpr std::size_t bound = 16 * 1024;
// What the reader may queue past the bound: the lines of one 4 KiB read, each a byte at worst.
constexpr std::size_t one_read = 4096 * (sizeof(output_line) + 1);

std::string numbered(std::size_t i) { return "line " + std::to_string(i); }

// Writes numbered lines into the pipe, from `next` on, until it is full; the lines written.
std::size_t fill(int fd, std::size_t& next) {
    std::size_t written = 0;
    for (;;) {
        const std::string l = numbered(next) + "\n";
        const ssize_t n = ::write(fd, l.data(), l.size());  // whole: under PIPE_BUF, never split
        if (n < 0) {
            REQUIRE(errno == EAGAIN);
            return written;
        }
        ++next;
        ++written;
    }
}

// The loop turns `n` times: a reader that could read has read by then.
task<void> turns(int n) {
    for (int i = 0; i < n; ++i) (void)co_await io::nop();
}

// Takes `n` lines, checking they are the numbered ones from `first` on.
task<std::size_t> take_numbered(output_queue& q, std::size_t first, std::size_t n) {
    std::size_t wrong = 0;
    for (std::size_t i = first; i < first + n; ++i) {
        auto l = co_await q.take();
        wrong += !l || l->text != numbered(i) || l->end != line_end::newline || l->worker_id != 7 || l->slot != 3;
    }
    co_return wrong;
}

unique_fd nonblocking(unique_fd fd) {
    REQUIRE(::fcntl(fd.get(), F_SETFL, O_NONBLOCK) == 0);
    return fd;
}

// Until the reader has queued past its bound: it stopped there, and reads no more until a
// line is taken.
task<void> until_past_bound(int to, output_queue& q, std::size_t& next) {
    while (q.unread_bytes() <= bound) {
        (void)fill(to, next);
        co_await turns(1);
    }
}

task<void> backpressure(int to, output_queue& q) {
    std::size_t next = 0;
    co_await until_past_bound(to, q, next);
    (void)fill(to, next);
    co_await turns(20);
    CHECK(q.unread_bytes() <= bound + one_read);
    CHECK(fill(to, next) == 0);  // the pipe is still full: a worker writing now would wait
    const std::size_t waiting = q.unread_lines();
    const auto wrong = co_await take_numbered(q, 0, waiting);
    CHECK(wrong == 0);
    co_await turns(20);
    CHECK(fill(to, next) > 0);  // the reader went on
}

task<void> drained_at_exit(unique_fd to, output_queue& q) {
    std::size_t next = 0;
    co_await until_past_bound(to.get(), q, next);
    (void)fill(to.get(), next);
    to.reset();  // the worker exits, its pipe full
    co_await turns(20);
    CHECK_FALSE(q.ended());
    q.worker_exited();
    while (!q.ended()) co_await turns(1);  // read to its end, with nothing taken
    CHECK(q.unread_lines() == next);
    const auto wrong = co_await take_numbered(q, 0, next);
    CHECK(wrong == 0);
    const auto after = co_await q.take();
    CHECK_FALSE(after.has_value());
    CHECK(q.ended());
}

task<void> read_under(std::stop_token stop, int from, output_queue& q) {
    co_await detail::pipe_lines(from, q).with_stop_token(std::move(stop));
}

task<void> stop_then_take(std::stop_source& stop, output_queue& q) {
    co_await turns(20);
    stop.request_stop();
    auto l = co_await q.take();
    REQUIRE(l.has_value());
    CHECK(l->text == "unfinished");
    CHECK(l->end == line_end::eof);
    const auto after = co_await q.take();
    CHECK_FALSE(after.has_value());
}

}  // namespace

TEST_CASE("past its bound the reader stops, the pipe fills so a writer would wait, and taking lines lets it on") {
    io_context ctx;
    auto [from, to] = support::make_pipe();
    const unique_fd writer = nonblocking(std::move(to));
    output_queue q(7, 3, stdio_stream::out, bound, detail::pipe_capacity(from.get()));
    sync_wait(bounded(when_any(detail::pipe_lines(from.get(), q), backpressure(writer.get(), q))));
}

TEST_CASE("what an exited worker left in its full pipe comes in past the bound, then the queue ends") {
    io_context ctx;
    auto [from, to] = support::make_pipe();
    output_queue q(7, 3, stdio_stream::out, bound, detail::pipe_capacity(from.get()));
    sync_wait(bounded(when_all(detail::pipe_lines(from.get(), q), drained_at_exit(nonblocking(std::move(to)), q))));
}

TEST_CASE("a stopped reader keeps the unfinished line and ends the queue") {
    io_context ctx;
    auto [from, to] = support::make_pipe();
    REQUIRE(::write(to.get(), "unfinished", 10) == 10);
    output_queue q(7, 3, stdio_stream::err, bound, detail::pipe_capacity(from.get()));
    std::stop_source stop;
    sync_wait(bounded(when_all(read_under(stop.get_token(), from.get(), q), stop_then_take(stop, q))));
}
