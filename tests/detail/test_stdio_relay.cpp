// detail::relay_lines and its relay_buffer on their own: lines gathered into whole writes, an
// endless line cut into pieces, and an output that fails (a closed pipe, a full disk) while the
// worker's pipe is still drained.
#include <catch2/catch.hpp>

#include "support/descriptors.hpp"
#include "support/lines.hpp"
#include "support/waiting.hpp"

#include <cluster/detail/sigpipe.hpp>
#include <cluster/detail/stdio_relay.hpp>
#include <cluster/io.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

using namespace cluster;
using cluster::detail::relay_buffer;
using cluster::detail::relay_chunk;

using support::bounded;

namespace {

// Worker 1's stdout, as text: each line prefixed.
const detail::line_source worker_1{1, 1, 1234, stdio_stream::out};
const std::string prefix = "[worker 1] ";

// Many times what a pipe holds (64 KiB), as numbered lines.
std::string many_lines() {
    std::string out;
    for (int i = 0; out.size() < (1u << 20); ++i) out += "line " + std::to_string(i) + "\n";
    return out;
}

// One line of n bytes, without its newline.
std::string endless_line(std::size_t n) { return std::string(n, 'x'); }

// Writes `text` into the worker's end of its pipe, then closes that end, as a worker exiting.
task<result<void>> worker_writes(unique_fd end, const std::string& text) {
    auto written = co_await io::write_all(end.get(), std::as_bytes(std::span(text)));
    end.reset();
    co_return written;
}

// What relay_lines writes to a file when the worker writes `text`, then exits.
std::string relayed(const std::string& text) {
    io_context ctx;
    auto [from, worker_end] = support::make_pipe();
    const unique_fd to(::memfd_create("relayed", MFD_CLOEXEC));
    REQUIRE(to);
    const auto written = std::get<1>(
        sync_wait(bounded(when_all(detail::relay_lines(from.get(), to.get(), log_format::text, worker_1, {}),
                                   worker_writes(std::move(worker_end), text)))));
    CHECK(written.has_value());
    return support::read_all(to.get());
}

// SIGPIPE as in a primary (see ignore_sigpipe) while this lives; the default again after.
class as_in_a_primary {
public:
    as_in_a_primary() {
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        ::sigaction(SIGPIPE, &dfl, &old_);
        detail::ignore_sigpipe();
    }
    as_in_a_primary(const as_in_a_primary&) = delete;
    as_in_a_primary& operator=(const as_in_a_primary&) = delete;
    ~as_in_a_primary() { ::sigaction(SIGPIPE, &old_, nullptr); }

private:
    struct sigaction old_ {};
};

// Where the primary's output goes: a pipe nobody reads any more (EPIPE), or /dev/full (ENOSPC).
unique_fd failing_output(bool closed_pipe) {
    if (!closed_pipe) return unique_fd(::open("/dev/full", O_WRONLY | O_CLOEXEC));
    auto [read_end, write_end] = support::make_pipe();
    return std::move(write_end);
}

}  // namespace

TEST_CASE("complete lines are prefixed and gathered into writes of at most relay_chunk") {
    relay_buffer lines(log_format::text, worker_1);
    lines.take("a\nb\nunfinished");
    CHECK(lines.take_writes() == std::vector<std::string>{prefix + "a\n" + prefix + "b\n"});
    CHECK(lines.unfinished() == std::string_view("unfinished").size());
    lines.take(" now\n" + std::string(relay_chunk, 'y') + "\nlast");
    const auto writes = lines.take_writes();
    REQUIRE(writes.size() == 2);
    CHECK(writes[0] == prefix + "unfinished now\n");
    CHECK(writes[1] == prefix + std::string(relay_chunk, 'y') + "\n");  // too long to share a write
    lines.finish();
    CHECK(lines.take_writes() == std::vector<std::string>{prefix + "last\n"});
    CHECK(lines.unfinished() == 0);
}

TEST_CASE("a line that never ends keeps no more than output_line_limit waiting") {
    relay_buffer lines(log_format::text, worker_1);
    std::string pieces;
    std::size_t most_waiting = 0;
    for (int i = 0; i < 256; ++i) {
        lines.take(std::string(relay_chunk, 'x'));
        most_waiting = std::max(most_waiting, lines.unfinished());
        for (const auto& w : lines.take_writes()) pieces += w;
    }
    CHECK(most_waiting <= output_line_limit);
    const auto got = support::lines_of(pieces);
    CHECK(got.size() == 256 * relay_chunk / output_line_limit - 1);  // the last piece still waits
    for (const auto& line : got) CHECK(line == prefix + endless_line(output_line_limit));
}

TEST_CASE("a line cut for its length is not cut inside a UTF-8 character") {
    relay_buffer lines(log_format::text, worker_1);
    std::string euros;
    while (euros.size() <= 2 * output_line_limit) euros += "\xE2\x82\xAC";  // U+20AC, three bytes
    lines.take(euros + "\n");
    std::string joined;
    for (const auto& w : lines.take_writes()) {
        for (const auto& line : support::lines_of(w)) {
            REQUIRE(line.starts_with(prefix));
            const std::string piece = line.substr(prefix.size());
            CHECK(piece.size() % 3 == 0);  // whole characters only
            CHECK(piece.size() <= output_line_limit);
            joined += piece;
        }
    }
    CHECK(joined == euros);
}

TEST_CASE("relay_lines cuts an endless line into pieces of output_line_limit, and the lines around it stay whole") {
    const std::string endless = endless_line(16 * output_line_limit + 100);
    const auto got = support::lines_of(relayed("before\n" + endless + "\nafter\n"));
    REQUIRE(got.size() == 1 + 17 + 1);
    CHECK(got.front() == prefix + "before");
    CHECK(got.back() == prefix + "after");
    std::string joined;
    for (std::size_t i = 1; i + 1 < got.size(); ++i) {
        INFO("piece " << i);
        REQUIRE(got[i].starts_with(prefix));
        CHECK(got[i].size() - prefix.size() <= output_line_limit);
        joined += got[i].substr(prefix.size());
    }
    CHECK(joined == endless);
}

TEST_CASE("relay_lines drains the worker's pipe to its end while every write fails, without spinning") {
    const bool closed_pipe = GENERATE(true, false);
    INFO((closed_pipe ? "output: a pipe with no reader (EPIPE)" : "output: /dev/full (ENOSPC)"));
    const as_in_a_primary sigpipe;
    io_context ctx;
    const unique_fd to = failing_output(closed_pipe);
    REQUIRE(to);
    auto [from, worker_end] = support::make_pipe();
    const std::string text = many_lines();
    // The worker's writes can only finish if the relay reads on, and the relay ends only at
    // the worker's end of file: one that stopped would leave the worker blocked, one that
    // retried a failed write would never end. Either fails the bound.
    const auto written = std::get<1>(
        sync_wait(bounded(when_all(detail::relay_lines(from.get(), to.get(), log_format::text, worker_1, {}),
                                   worker_writes(std::move(worker_end), text)))));
    CHECK(written.has_value());
}
