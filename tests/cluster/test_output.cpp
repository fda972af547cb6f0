// The primary's output going nowhere — a pipe nobody reads (`server | head -1`), a full disk —
// with real processes in fork and exec mode: supervision goes on, and nothing dies of SIGPIPE;
// and what an exec-mode worker starts with.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/descriptors.hpp"
#include "support/events.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace cluster;
using support::proto;
namespace behaviour = support::behaviour;
using support::bounded;
using support::no_children;
using support::open_fd_count;
using support::wait_limit;

namespace {

const char* mode_name(start_mode m) { return m == start_mode::fork ? "fork mode" : "exec mode"; }

// Where the primary's stdout and stderr go.
enum class sink { closed_pipe, full_disk };

unique_fd open_sink(sink s) {
    if (s == sink::full_disk) return unique_fd(::open("/dev/full", O_WRONLY | O_CLOEXEC));
    auto [read_end, write_end] = support::make_pipe();
    return std::move(write_end);  // the read end closes here: `head -1` has exited
}

// What the primary in the child saw, a line at a time, into a file the test reads after: its
// stdout and stderr lead nowhere. No Catch assertion in the child.
class report {
public:
    explicit report(int fd) noexcept : fd_(fd) {}
    void line(const std::string& text) const { (void)!::write(fd_, (text + "\n").data(), text.size() + 1); }

private:
    int fd_;
};

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
    INFO(mode_name(mode));
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

}  // namespace

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
