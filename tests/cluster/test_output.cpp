// Output, with real processes in fork and exec mode. The workers': each stdio choice (inherit,
// relay, pipe, discard) sends it where it says; piped lines come back whole, unmixed and in
// order, outlive their worker, and a worker that never ends its line cannot grow the primary.
// The primary's going nowhere — a pipe nobody reads (`server | head -1`), a full disk —
// supervision goes on, and nothing dies of SIGPIPE. And what an exec-mode worker starts with.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/child_report.hpp"
#include "support/descriptors.hpp"
#include "support/events.hpp"
#include "support/lines.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace cluster;
using support::proto;
using support::report;
namespace behaviour = support::behaviour;
using support::bounded;
using support::no_children;
using support::open_fd_count;
using support::wait_limit;

namespace {

// Where the primary's stdout and stderr go.
enum class sink { closed_pipe, full_disk };

unique_fd open_sink(sink s) {
    if (s == sink::full_disk) return unique_fd(::open("/dev/full", O_WRONLY | O_CLOEXEC));
    auto [read_end, write_end] = support::make_pipe();
    return std::move(write_end);  // the read end closes here: `head -1` has exited
}

// What the primary in the child saw, a line at a time, into a file the test reads after: its
// stdout and stderr lead nowhere. No Catch assertion in the child.
// A silent worker (relayed by the primary) and one writing to the primary's stdout itself,
// each printing lines, then crashing; returns once both were replaced, having written down
// every exit and every replacement online. Logs each event on its own stdout too, flushed at
// once, as a primary_main does.
task<void> supervise_crashes(primary<proto>& p, const report& r) {
    fork_options relayed, direct;
    relayed.silent = true;
    direct.silent = false;
    (void)co_await p.fork(relayed);
    (void)co_await p.fork(direct);
    for (int replaced = 0; replaced < 2;) {
        auto e = co_await p.next_event();
        std::printf("primary: worker %u: %s\n", e.worker_id(), support::kind_name(e.kind()));
        std::fflush(stdout);
        if (const auto* x = e.get_if<exit_event>())
            r.line("exit " + std::to_string(x->worker_id) + ": " + x->status.to_string());
        if (e.is<online_event>() && e.worker_id() > 2) {
            r.line("replacement online");
            ++replaced;
        }
    }
    co_await p.shutdown();
}

// In the child: a primary whose stdout and stderr are `out`, run as run() runs one; exits
// with run()'s code, or 2 if supervision stalled, 3 if something threw.
[[noreturn]] void primary_writing_to(int out, int report_fd, start_mode mode) {
    const report r(report_fd);
    int code = 0;
    if (::dup2(out, STDOUT_FILENO) < 0 || ::dup2(out, STDERR_FILENO) < 0) ::_exit(4);
    try {
        io_context ctx;
        primary<proto> p(support::scripted(mode, behaviour::chatty_then_crash), support::worker_main);
        bool stalled = false;
        code = sync_wait(p.run([&](primary<proto>& self) -> task<void> {
            auto done = co_await with_timeout(supervise_crashes(self, r), wait_limit);
            if (!done) stalled = true;
        }));
        if (stalled) code = 2;
    } catch (const std::exception& e) {
        r.line(std::string("threw: ") + e.what());
        code = 3;
    }
    r.line("run: " + std::to_string(code));
    ::_exit(code);
}

struct outcome {
    std::optional<exit_status> status;
    std::string report;
};

outcome run_primary_writing_to(sink s, start_mode mode) {
    const unique_fd out = open_sink(s);
    const unique_fd report_file(::memfd_create("report", MFD_CLOEXEC));
    REQUIRE((out && report_file));
    std::fflush(nullptr);
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) primary_writing_to(out.get(), report_file.get(), mode);
    io_context ctx;
    auto status = sync_wait(bounded(child->wait(), 2 * wait_limit));
    std::string text(4096, '\0');
    const ssize_t n = ::pread(report_file.get(), text.data(), text.size(), 0);
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return {status ? std::optional(*status) : std::nullopt, text};
}

// How many of the report's lines are `line`.
std::ptrdiff_t count_lines(const std::string& text, std::string_view line) {
    std::vector<std::string_view> lines;
    for (std::size_t at = 0, nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1)
        lines.push_back(std::string_view(text).substr(at, nl - at));
    return std::count(lines.begin(), lines.end(), line);
}

void check_kept_supervising(sink s, start_mode mode) {
    INFO(to_string(mode) << " mode");
    const std::size_t fds = open_fd_count();
    const auto got = run_primary_writing_to(s, mode);
    INFO("what the primary saw:\n" << got.report);
    REQUIRE(got.status.has_value());
    // Not SIGPIPE (a shell's exit code 141): run() ended with its own code.
    CHECK(got.status->to_string() == "exit code 0");
    // Each worker crashed as scripted, after its output; SIGPIPE did not kill it first.
    CHECK(count_lines(got.report, "exit 1: exit code 1") == 1);
    CHECK(count_lines(got.report, "exit 2: exit code 1") == 1);
    CHECK(count_lines(got.report, "replacement online") == 2);
    CHECK(count_lines(got.report, "run: 0") == 1);
    CHECK(open_fd_count() == fds);
    CHECK(no_children());
}

// SIGPIPE ignored while this lives, as a program may set it before it starts its primary.
class sigpipe_ignored {
public:
    sigpipe_ignored() {
        struct sigaction ign {};
        ign.sa_handler = SIG_IGN;
        ::sigaction(SIGPIPE, &ign, &old_);
    }
    sigpipe_ignored(const sigpipe_ignored&) = delete;
    sigpipe_ignored& operator=(const sigpipe_ignored&) = delete;
    ~sigpipe_ignored() { ::sigaction(SIGPIPE, &old_, nullptr); }

private:
    struct sigaction old_ {};
};

// Exits 0 if the shell's SIGPIPE is at its default, 1 if it is ignored (SigIgn's bit 12).
constexpr const char* sigpipe_check =
    "m=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status); exit $(( (0x$m >> 12) & 1 ))";

// ---- the workers' output ----

output_mode mode_of(const stdio_options& o, stdio_stream s) { return s == stdio_stream::out ? o.out : o.err; }

// What a chatty worker prints on `s`, a line each; its stdout then ends with chatty_tail, unterminated.
std::vector<std::string> chatty_lines(stdio_stream s) {
    const bool out = s == stdio_stream::out;
    std::vector<std::string> lines;
    for (int i = 0; i < (out ? support::chatty_out_lines : support::chatty_err_lines); ++i)
        lines.push_back(support::chatty_line(out ? "out" : "err", i));
    return lines;
}

// A chatty worker's stream `s`, as `m` makes it reach the primary: what the primary writes of
// it on its own stdout or stderr, and what it reads from the pipe ("<end> <text>" each).
struct arrival {
    std::vector<std::string> written, piped;
};

arrival expected_arrival(output_mode m, stdio_stream s) {
    auto lines = chatty_lines(s);
    const bool tail = s == stdio_stream::out;
    const std::string tail_text(support::chatty_tail);
    switch (m) {
    case output_mode::inherit:
        if (tail) lines.push_back("(unterminated) " + tail_text);
        return {lines, {}};
    case output_mode::relay:
        if (tail) lines.push_back(tail_text);  // the relay ends it
        for (auto& l : lines) l = "[worker 1] " + l;
        return {lines, {}};
    case output_mode::pipe:
        for (auto& l : lines) l = "newline " + l;
        if (tail) lines.push_back("eof " + tail_text);
        return {{}, lines};
    case output_mode::discard: return {};
    }
    return {};
}

// A piped stream, read to its end into the report: "<stream> <end> <text>" for each line, and
// "stamped wrong" for one whose worker, slot or stream is not this one's.
task<void> report_piped(worker_output lines, unsigned id, unsigned slot, stdio_stream s, const report& r) {
    while (auto l = co_await lines.next_line()) {
        if (l->worker_id != id || l->slot != slot || l->stream != s) r.line("stamped wrong: " + l->text);
        r.line(std::string(to_string(s)) + " " + to_string(l->end) + " " + l->text);
    }
}

// One chatty worker: its piped streams read to their end, then its exit.
task<void> one_chatty_worker(primary<proto>& p, const stdio_options& stdio, const report& r) {
    auto& h = co_await p.fork(support::as_configured);
    const unsigned id = h.id(), slot = h.slot();
    for (const stdio_stream s : {stdio_stream::out, stdio_stream::err})
        if (mode_of(stdio, s) == output_mode::pipe) co_await report_piped(h.output(s), id, slot, s, r);
    const auto e = co_await p.next<exit_event>();
    r.line("exit: " + e.status.to_string());
}

// In the child: a primary of one chatty worker whose output goes as `stdio` says; exits 0, or
// 2 if it stalled, 3 if something threw.
[[noreturn]] void stdio_primary(start_mode mode, const stdio_options& stdio, int report_fd) {
    const report r(report_fd);
    int code = 0;
    try {
        io_context ctx;
        auto o = support::scripted(mode, behaviour::chatty);
        o.stdio = stdio;
        o.restart.mode = restart_mode::temporary;
        primary<proto> p(o, support::worker_main);
        const auto done = sync_wait(with_timeout(one_chatty_worker(p, stdio, r), wait_limit));
        code = done ? 0 : 2;
    } catch (const std::exception& e) {
        r.line(std::string("threw: ") + e.what());
        code = 3;
    }
    std::fflush(nullptr);
    ::_exit(code);
}

struct captured_stdio {
    std::optional<exit_status> status;
    std::string out, err, report;
};

captured_stdio run_stdio_primary(start_mode mode, const stdio_options& stdio) {
    const unique_fd out(::memfd_create("stdout", MFD_CLOEXEC)), err(::memfd_create("stderr", MFD_CLOEXEC)),
        report_file(::memfd_create("report", MFD_CLOEXEC));
    REQUIRE((out && err && report_file));
    std::fflush(nullptr);
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) {
        if (::dup2(out.get(), STDOUT_FILENO) < 0 || ::dup2(err.get(), STDERR_FILENO) < 0) ::_exit(4);
        stdio_primary(mode, stdio, report_file.get());
    }
    io_context ctx;
    auto status = sync_wait(bounded(child->wait(), 2 * wait_limit));
    return {status ? std::optional(*status) : std::nullopt, support::read_all(out.get()), support::read_all(err.get()),
            support::read_all(report_file.get())};
}

// The report's lines about piped stream `s`, without the stream's name.
std::vector<std::string> piped_lines(const std::string& report_text, stdio_stream s) {
    const std::string name = std::string(to_string(s)) + " ";
    std::vector<std::string> out;
    for (const auto& line : support::lines_of(report_text))
        if (line.starts_with(name)) out.push_back(line.substr(name.size()));
    return out;
}

// The next mode after m: paired with m for the other stream, so each case sends the two apart.
output_mode next_mode(output_mode m) {
    switch (m) {
    case output_mode::inherit: return output_mode::relay;
    case output_mode::relay: return output_mode::pipe;
    case output_mode::pipe: return output_mode::discard;
    case output_mode::discard: return output_mode::inherit;
    }
    return output_mode::inherit;
}

// Every line of a piped stream, to its end.
task<std::vector<output_line>> read_to_end(worker_output lines) {
    std::vector<output_line> out;
    while (auto l = co_await lines.next_line()) out.push_back(std::move(*l));
    co_return out;
}

std::vector<std::string> texts_of(const std::vector<output_line>& lines) {
    std::vector<std::string> out;
    for (const auto& l : lines) out.push_back(l.text);
    return out;
}

// Nothing if `got` is worker id's numbered lines on `s`, each whole, stamped with its worker,
// slot and stream, ended by its newline, in order, none missing; else the first thing wrong.
std::string numbered_mismatch(const std::vector<output_line>& got, stdio_stream s, unsigned id, unsigned slot) {
    const bool out = s == stdio_stream::out;
    const auto want = static_cast<std::size_t>(out ? support::numbered_out_lines : support::numbered_err_lines);
    if (got.size() != want) return std::to_string(got.size()) + " lines, not " + std::to_string(want);
    for (std::size_t i = 0; i < want; ++i) {
        const auto& l = got[i];
        const std::string at = "line " + std::to_string(i) + ": ";
        if (l.worker_id != id || l.slot != slot || l.stream != s)
            return at + "stamped worker " + std::to_string(l.worker_id) + ", slot " + std::to_string(l.slot) + ", " +
                   to_string(l.stream);
        if (l.end != line_end::newline) return at + "ended by " + to_string(l.end);
        if (l.text != support::numbered_line(out ? "out" : "err", id, static_cast<int>(i)))
            return at + "'" + l.text.substr(0, 60) + "'";
    }
    return "";
}

struct piped_stream {
    unsigned worker_id = 0;
    unsigned slot = 0;
    stdio_stream stream = stdio_stream::out;
};

}  // namespace

TEST_CASE("silent is Node's name for stdio {relay, relay}, and a fork's stdio or silent replaces the primary's") {
    primary_options base;
    base.silent = true;
    const auto relayed = detail::chosen_stdio(base);
    REQUIRE(relayed.has_value());
    CHECK(relayed->out == output_mode::relay);
    CHECK(relayed->err == output_mode::relay);

    fork_options piped;
    piped.stdio = stdio_options{};
    piped.stdio->out = output_mode::pipe;
    const auto forked = merged(base, piped);
    CHECK_FALSE(forked.silent);
    CHECK(forked.stdio.out == output_mode::pipe);
    CHECK(forked.stdio.err == output_mode::inherit);

    fork_options loud;
    loud.silent = false;
    base.silent = false;
    base.stdio.err = output_mode::discard;
    CHECK(merged(base, loud).stdio.err == output_mode::inherit);

    base.silent = true;  // and stdio.err discard: which is meant?
    const auto both = detail::chosen_stdio(base);
    REQUIRE_FALSE(both.has_value());
    CHECK(both.error() == std::errc::invalid_argument);
}

TEST_CASE("each stdio choice sends a worker's stdout and stderr where it says: inherit, relay, pipe, discard") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    stdio_options stdio;
    stdio.out = GENERATE(output_mode::inherit, output_mode::relay, output_mode::pipe, output_mode::discard);
    stdio.err = next_mode(stdio.out);
    INFO(to_string(mode) << " mode"
                         << ", stdout " << to_string(stdio.out) << ", stderr " << to_string(stdio.err));
    const std::size_t fds = open_fd_count();
    const auto got = run_stdio_primary(mode, stdio);
    INFO("the primary's report begins: " << got.report.substr(0, 300));
    REQUIRE(got.status.has_value());
    CHECK(got.status->to_string() == "exit code 0");
    CHECK(count_lines(got.report, "exit: exit code 0") == 1);
    CHECK(got.report.find("stamped wrong") == std::string::npos);
    for (const stdio_stream s : {stdio_stream::out, stdio_stream::err}) {
        INFO(to_string(s));
        const auto want = expected_arrival(mode_of(stdio, s), s);
        CHECK(support::first_difference(support::lines_of(s == stdio_stream::out ? got.out : got.err), want.written) ==
              "");
        CHECK(support::first_difference(piped_lines(got.report, s), want.piped) == "");
    }
    CHECK(open_fd_count() == fds);
    CHECK(no_children());
}

TEST_CASE("10,000 piped lines from 4 workers come back whole, unmixed, in order, none lost") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO(to_string(mode) << " mode");
    auto o = support::scripted(mode, behaviour::numbered_lines);
    o.stdio.out = o.stdio.err = output_mode::pipe;
    o.restart.mode = restart_mode::temporary;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        std::vector<piped_stream> streams;
        std::vector<task<std::vector<output_line>>> reads;
        for (int i = 0; i < 4; ++i) {
            auto& h = co_await support::fork_worker(p);
            for (const stdio_stream s : {stdio_stream::out, stdio_stream::err}) {
                streams.push_back({h.id(), h.slot(), s});
                reads.push_back(read_to_end(h.output(s)));
            }
        }
        const auto got = co_await bounded(when_all(std::move(reads)), "every line of every worker");
        std::size_t stdout_lines = 0;
        for (std::size_t i = 0; i < streams.size(); ++i) {
            const auto& [id, slot, s] = streams[i];
            INFO("worker " << id << "'s " << to_string(s));
            CHECK(numbered_mismatch(got[i], s, id, slot) == "");
            if (s == stdio_stream::out) stdout_lines += got[i].size();
        }
        CHECK(stdout_lines == 10'000);
        const auto exits = co_await support::collect<exit_event>(p, 4);
        for (const auto& e : exits) CHECK(e.status.success());
    });
}

TEST_CASE("piped lines outlive their worker and its handle, past a full queue, and its pipes close as it exits") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO(to_string(mode) << " mode");
    auto o = support::scripted(mode, behaviour::chatty);
    o.stdio.out = o.stdio.err = output_mode::pipe;
    o.stdio.max_unread = 4096;  // far less than it writes: the rest is still in its pipes when it exits
    o.restart.mode = restart_mode::temporary;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const std::size_t fds = open_fd_count();
        auto& h = co_await support::fork_worker(p);
        const unsigned id = h.id();
        const worker_output out = h.output(stdio_stream::out), err = h.output(stdio_stream::err);
        {
            const auto events = co_await support::events_through(p, id, event_kind::exit);
            CHECK(support::exit_of(events).status.success());
        }
        CHECK(p.worker(id) == nullptr);  // its exit event was taken, and its handle went with it
        CHECK(open_fd_count() == fds);   // its channel and pipes are closed
        CHECK(out.ended());
        CHECK(err.ended());
        CHECK(out.unread_lines() == static_cast<std::size_t>(support::chatty_out_lines) + 1);
        const auto out_lines = co_await read_to_end(out);
        const auto err_lines = co_await read_to_end(err);
        auto want_out = chatty_lines(stdio_stream::out);
        want_out.emplace_back(support::chatty_tail);
        CHECK(support::first_difference(texts_of(out_lines), want_out) == "");
        CHECK(support::first_difference(texts_of(err_lines), chatty_lines(stdio_stream::err)) == "");
        REQUIRE(!out_lines.empty());
        CHECK(out_lines.back().end == line_end::eof);
        const auto after = co_await out.next_line();
        CHECK_FALSE(after.has_value());
        CHECK(out.unread_bytes() == 0);
    });
}

TEST_CASE("a worker writing 64 MiB without a newline waits for the primary's code, whose memory stays bounded") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO(to_string(mode) << " mode");
    auto o = support::scripted(mode, behaviour::endless_line);
    o.stdio.out = output_mode::pipe;
    o.restart.mode = restart_mode::temporary;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const std::int64_t rss_before = static_cast<std::int64_t>(support::own_rss());
        auto& h = co_await support::fork_worker(p);
        const worker_output out = h.output(stdio_stream::out);
        // The most the worker can be ahead of what this test took: the queue's bound and the lines
        // of one read past it, a pipe (1 MiB, Linux's largest by default), the line's unfinished piece.
        const auto most_ahead = static_cast<std::int64_t>(
            p.settings().stdio.max_unread + 4096 * (sizeof(output_line) + 1) + (1u << 20) + output_line_limit);
        std::int64_t taken = 0, furthest_ahead = 0, rss_peak = rss_before;
        std::size_t cut = 0, misshapen = 0;
        for (;;) {
            auto line = co_await bounded(out.next_line(), "the next piece of the line");
            REQUIRE(line.has_value());
            taken += static_cast<std::int64_t>(line->text.size());
            misshapen +=
                line->text.size() > output_line_limit || line->text.find_first_not_of('x') != std::string::npos;
            const support::ping asked{};
            const auto so_far = co_await h.request<support::note>(asked);
            REQUIRE(so_far.has_value());
            furthest_ahead = std::max<std::int64_t>(furthest_ahead, std::stoll(so_far->text) - taken);
            rss_peak = std::max(rss_peak, static_cast<std::int64_t>(support::own_rss()));
            if (line->end != line_end::cut) {
                CHECK(line->end == line_end::newline);
                break;
            }
            ++cut;
        }
        CHECK(taken == static_cast<std::int64_t>(support::endless_bytes));
        CHECK(cut == support::endless_bytes / output_line_limit - 1);
        CHECK(misshapen == 0);
        INFO("the worker was at most " << furthest_ahead << " bytes ahead; the primary grew by "
                                       << (rss_peak - rss_before) << " bytes");
        CHECK(furthest_ahead <= most_ahead);
        CHECK(rss_peak - rss_before < (16 << 20));
        const auto left = co_await h.disconnect();
        CHECK(left.has_value());
        const auto exits = co_await support::collect<exit_event>(p, 1);
        CHECK(exits.front().status.success());
    });
}

TEST_CASE("silent with stdio, and the lines of a stream that is not piped, are clear errors, and nothing leaks") {
    auto o = support::scripted(start_mode::fork, behaviour::wait_for_disconnect);
    o.restart.mode = restart_mode::temporary;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const std::size_t fds = open_fd_count();
        fork_options both;
        both.silent = true;
        both.stdio = stdio_options{};
        both.stdio->out = output_mode::pipe;
        const auto refused = co_await p.try_fork(both);
        REQUIRE_FALSE(refused.has_value());
        CHECK(refused.error() == std::errc::invalid_argument);
        std::string what;
        try {
            (void)co_await p.fork(both);
        } catch (const std::system_error& e) {
            what = e.what();
        }
        CHECK_THAT(what, Catch::Contains("silent and stdio are both set"));
        CHECK(p.workers().empty());
        CHECK(open_fd_count() == fds);
        CHECK(no_children());

        fork_options out_only;
        out_only.stdio = stdio_options{};
        out_only.stdio->out = output_mode::pipe;
        out_only.stdio->err = output_mode::discard;
        auto& h = co_await support::fork_worker(p, out_only);
        what.clear();
        std::error_code code;
        try {
            (void)h.output(stdio_stream::err);
        } catch (const std::system_error& e) {
            what = e.what();
            code = e.code();
        }
        CHECK(code == std::errc::invalid_argument);
        CHECK_THAT(what, Catch::Contains("stderr is not piped") && Catch::Contains("discard"));
        const auto left = co_await h.disconnect();
        CHECK(left.has_value());
        (void)co_await support::collect<exit_event>(p, 1);
    });
}

TEST_CASE("a primary whose stdout and stderr are a pipe nobody reads keeps supervising") {
    check_kept_supervising(sink::closed_pipe, GENERATE(start_mode::fork, start_mode::exec));
}

TEST_CASE("a primary whose stdout and stderr are a full disk keeps supervising") {
    check_kept_supervising(sink::full_disk, GENERATE(start_mode::fork, start_mode::exec));
}

TEST_CASE("a program an exec-mode worker runs starts with SIGPIPE's default, even if the primary ignores it") {
    const sigpipe_ignored ignored;
    primary_options o;
    o.mode = start_mode::exec;
    o.exec = "/bin/sh";
    o.args = std::vector<std::string>{"-c", sigpipe_check};
    o.restart.mode = restart_mode::temporary;
    support::with_primary(o, [](primary<proto>& p) -> task<void> {
        const auto& h = co_await support::fork_worker(p);
        const unsigned id = h.id();
        auto events = co_await support::events_through(p, id, event_kind::exit);
        CHECK(support::exit_of(events).status.to_string() == "exit code 0");
    });
    // The primary kept what the program chose.
    struct sigaction now {};
    ::sigaction(SIGPIPE, nullptr, &now);
    CHECK(now.sa_handler == SIG_IGN);
}
