// Logs, with real processes in fork and exec mode: relayed lines as JSON that a parser reads
// whatever the worker printed; log_options::file renamed as logrotate does and reopened at a
// SIGUSR1 sent to the whole process group — lines before in the old file, after in the new,
// none lost or torn, no worker killed — and a reopen that fails, which keeps the old file.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cluster/cluster.hpp>

#include "support/child_report.hpp"
#include "support/descriptors.hpp"
#include "support/lines.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/temp_dir.hpp"
#include "support/waiting.hpp"

#include <signal.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace cluster;
using support::proto;
using support::report;
namespace behaviour = support::behaviour;
using support::wait_limit;

namespace {

// What the primary in the child saw, a line at a time, into a file the test reads after: its
// stdout and stderr are the log. No Catch assertion in the child.
// primary_main's part in a test, in the child; throws what went wrong.
using script = std::function<task<void>(primary<proto>&, const report&)>;

task<void> run_script(primary<proto>& p, const script& body, const report& r, bool& ok) {
    try {
        auto done = co_await with_timeout(body(p, r), 3 * wait_limit);
        ok = done.has_value();
        if (!ok) r.line("timed out");
    } catch (const std::exception& e) {
        r.line(std::string("threw: ") + e.what());
    }
}

// In the child, leading a process group of its own (so that kill(0, …) signals it and its
// workers only): a primary with options `o` that runs `body`. Exits 0 if body ended, run()
// returned 0 and no descriptor was left open.
[[noreturn]] void primary_running(primary_options o, const script& body, int report_fd) {
    const report r(report_fd);
    bool ok = false;
    int code = -1;
    try {
        if (::setpgid(0, 0) != 0) throw std::system_error(errno, std::system_category(), "setpgid");
        const std::size_t fds = support::open_fd_count();
        {
            io_context ctx;
            primary<proto> p(std::move(o), support::worker_main);
            code = sync_wait(p.run([&](primary<proto>& self) { return run_script(self, body, r, ok); }));
        }
        if (support::open_fd_count() != fds) r.line("a descriptor was left open");
        ok = ok && support::open_fd_count() == fds;
    } catch (const std::exception& e) {
        r.line(std::string("threw: ") + e.what());
    }
    r.line("run: " + std::to_string(code));
    ::_exit(ok && code == 0 ? 0 : 1);
}

// Runs a primary in a child, as primary_running() says; returns what it reported.
std::string run_primary(primary_options o, const script& body) {
    const unique_fd report_file(::memfd_create("report", MFD_CLOEXEC));
    REQUIRE(report_file);
    std::fflush(nullptr);
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) primary_running(std::move(o), body, report_file.get());
    io_context ctx;
    const auto status = sync_wait(support::bounded(child->wait(), 4 * wait_limit));
    std::string text = support::read_all(::dup(report_file.get()));
    INFO("what the primary saw:\n" << text);
    REQUIRE(status.has_value());
    CHECK(status->to_string() == "exit code 0");
    return text;
}

// ---- in the child: waiting for the log ----

std::string file_text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

bool has_line(const std::string& path, const std::string& line) {
    const auto lines = support::lines_of(file_text(path));
    return std::find(lines.begin(), lines.end(), line) != lines.end();
}

bool has_line_with(const std::string& path, const std::string& part) {
    return file_text(path).find(part) != std::string::npos;
}

// Once done() holds, looking again each time something changes in `dir`; throws after wait_limit.
task<void> until(const std::string& dir, std::function<bool()> done, const std::string& what) {
    const unique_fd watch(::inotify_init1(IN_CLOEXEC));
    if (!watch || ::inotify_add_watch(watch.get(), dir.c_str(), IN_CREATE | IN_MODIFY | IN_MOVED_TO) < 0)
        throw std::system_error(errno, std::system_category(), "inotify");
    const auto deadline = std::chrono::steady_clock::now() + wait_limit;
    alignas(inotify_event) char events[4096];
    while (!done()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        auto n = left.count() > 0 ? co_await io::read(watch.get(), std::span(events)).with_timeout(left)
                                  : result<std::size_t>(std::make_error_code(std::errc::timed_out));
        if (!n) throw std::runtime_error("gave up waiting for " + what);
    }
}

// Asks the worker to print `text` (see behaviour::print_commands) on its stdout.
task<void> print(worker_handle<proto>& h, std::string text) {
    const support::command c{"o" + std::move(text)};
    auto sent = co_await h.send(c);
    if (!sent) throw std::system_error(sent.error(), "send");
}

// Disconnects the worker, and reports how it exited.
task<void> leave(primary<proto>& p, worker_handle<proto>& h, const report& r) {
    const unsigned id = h.id();
    (void)co_await h.disconnect();
    for (;;) {
        auto e = co_await p.next_event();
        if (const auto* x = e.get_if<exit_event>(); x && x->worker_id == id)
            co_return r.line("exit: " + x->status.to_string());
    }
}

std::string numbered(const std::string& word, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) out += word + " " + std::to_string(i) + "\n";
    return out;
}

std::vector<std::string> prefixed(const std::string& prefix, const std::string& text) {
    auto lines = support::lines_of(text);
    for (auto& l : lines) l = prefix + l;
    return lines;
}

primary_options logged(start_mode mode, const char* worker_behaviour, std::string file, log_format format) {
    auto o = support::scripted(mode, worker_behaviour);
    o.silent = true;
    o.log = {std::move(file), format};
    return o;
}

// ---- JSON lines ----

struct expected_line {
    std::string stream, text, end;
};

// What print_commands is asked to print, as commands, and the JSON lines each stream should give.
struct nasty_output {
    std::vector<std::string> commands;
    std::vector<expected_line> out, err;
};

nasty_output nasty() {
    using namespace std::string_literals;
    const std::string fffd = "\xEF\xBF\xBD";
    const std::string endless(output_line_limit + 10, 'x');
    nasty_output n;
    n.commands = {"oplain text\n",
                  "osay \"hi\" \\ back\n",
                  "ectl \x01\x1b[31m\t\r\x7f nul \0 end\n"s,
                  "obad \xFF\xFE utf8 \xC3\n",
                  "o" + endless + "\n",
                  "eno newline at the end"};
    n.out = {{"stdout", "plain text", "newline"},
             {"stdout", "say \"hi\" \\ back", "newline"},
             {"stdout", "bad " + fffd + fffd + " utf8 " + fffd, "newline"},
             {"stdout", endless.substr(0, output_line_limit), "cut"},
             {"stdout", endless.substr(output_line_limit), "newline"}};
    n.err = {{"stderr", "ctl \x01\x1b[31m\t\r\x7f nul \0 end"s, "newline"}, {"stderr", "no newline at the end", "eof"}};
    return n;
}

task<void> print_nasty(primary<proto>& p, const report& r) {
    auto& h = co_await p.fork();
    r.line("pid " + std::to_string(h.pid()) + " slot " + std::to_string(h.slot()));
    for (const auto& text : nasty().commands) {
        const support::command c{text};
        auto sent = co_await h.send(c);
        if (!sent) throw std::system_error(sent.error(), "send");
    }
    co_await leave(p, h, r);
}

// The number after `word` in the report ("pid 123 slot 1").
std::int64_t reported(const std::string& report, const std::string& word) {
    const auto at = report.find(word + " ");
    REQUIRE(at != std::string::npos);
    return std::stoll(report.substr(at + word.size() + 1));
}

}  // namespace

TEST_CASE("json: every relayed line is a JSON object with its fields, whatever the worker printed") {
    for (const auto mode : {start_mode::fork, start_mode::exec}) {
        INFO(to_string(mode) << " mode");
        const support::temp_dir dir;
        const std::string log = dir.file("app.log");
        const std::string seen =
            run_primary(logged(mode, behaviour::print_commands, log, log_format::json), print_nasty);
        CHECK(seen.find("exit: exit code 0") != std::string::npos);
        const auto want = nasty();
        std::vector<expected_line> out, err;
        for (const auto& line : support::lines_of(file_text(log))) {
            INFO(line.substr(0, 200));
            boost::system::error_code ec;
            const auto v = boost::json::parse(line, ec);
            REQUIRE(!ec);
            REQUIRE(v.is_object());
            const auto& o = v.as_object();
            CHECK(o.at("worker") == 1);
            CHECK(o.at("slot") == reported(seen, "slot"));
            CHECK(o.at("pid") == reported(seen, "pid"));
            const std::string time(o.at("time").as_string());
            CHECK(time.size() == 24);
            CHECK((time[10] == 'T' && time[19] == '.' && time.back() == 'Z'));
            expected_line got{std::string(o.at("stream").as_string()), std::string(o.at("text").as_string()),
                              std::string(o.at("end").as_string())};
            (got.stream == "stdout" ? out : err).push_back(std::move(got));
        }
        const auto same = [](const std::vector<expected_line>& a, const std::vector<expected_line>& b) {
            return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](const auto& x, const auto& y) {
                       return x.stream == y.stream && x.text == y.text && x.end == y.end;
                   });
        };
        CHECK(same(out, want.out));
        CHECK(same(err, want.err));
    }
}

TEST_CASE("sigusr1: after a rename, the primary writes to a new file at the path, and no worker dies of it") {
    for (const auto mode : {start_mode::fork, start_mode::exec}) {
        INFO(to_string(mode) << " mode");
        const support::temp_dir dir;
        const std::string log = dir.file("app.log"), rotated = dir.file("app.log.1");
        const auto rotate = [&](primary<proto>& p, const report& r) -> task<void> {
            auto& h = co_await p.fork();
            co_await print(h, numbered("before", 100));
            co_await until(
                dir.str(), [&] { return has_line(log, "[worker 1] before 99"); }, "the lines before");
            std::filesystem::rename(log, rotated);
            ::kill(0, SIGUSR1);  // the whole group, as `kill -USR1 -PGID` or systemd would
            co_await until(
                dir.str(), [&] { return std::filesystem::exists(log); }, "the new file");
            co_await print(h, numbered("after", 100));
            co_await until(
                dir.str(), [&] { return has_line(log, "[worker 1] after 99"); }, "the lines after");
            co_await leave(p, h, r);
        };
        const std::string seen = run_primary(logged(mode, behaviour::print_commands, log, log_format::text), rotate);
        INFO(seen);
        CHECK(seen.find("exit: exit code 0") != std::string::npos);  // not killed by SIGUSR1
        CHECK(support::lines_of(file_text(rotated)) == prefixed("[worker 1] ", numbered("before", 100)));
        CHECK(support::lines_of(file_text(log)) == prefixed("[worker 1] ", numbered("after", 100)));
    }
}

TEST_CASE("sigusr1: lines relayed while the file is reopened are each in one file or the other, whole") {
    const support::temp_dir dir;
    const std::string log = dir.file("app.log"), rotated = dir.file("app.log.1");
    const std::string first = "[worker 1] " + support::numbered_line("out", 1, 0);
    const auto rotate = [&](primary<proto>& p, const report& r) -> task<void> {
        auto& h = co_await p.fork();
        co_await until(
            dir.str(), [&] { return has_line(log, first); }, "the first line");
        std::filesystem::rename(log, rotated);
        ::kill(::getpid(), SIGUSR1);
        co_await leave(p, h, r);
    };
    const std::string seen =
        run_primary(logged(start_mode::fork, behaviour::numbered_lines, log, log_format::text), rotate);
    INFO(seen);
    auto lines = support::lines_of(file_text(rotated));
    const auto after = support::lines_of(file_text(log));
    lines.insert(lines.end(), after.begin(), after.end());
    std::vector<std::string> out, err;
    for (const auto& l : lines) (l.starts_with("[worker 1] out ") ? out : err).push_back(l);
    std::vector<std::string> want_out, want_err;
    for (int i = 0; i < support::numbered_out_lines; ++i)
        want_out.push_back("[worker 1] " + support::numbered_line("out", 1, i));
    for (int i = 0; i < support::numbered_err_lines; ++i)
        want_err.push_back("[worker 1] " + support::numbered_line("err", 1, i));
    CHECK(out == want_out);
    CHECK(err == want_err);
}

TEST_CASE("sigusr1: a reopen that fails keeps the old file, which says so once, and logging goes on") {
    const support::temp_dir dir;
    std::filesystem::create_directory(dir.file("logs"));
    const std::string log = dir.file("logs/app.log"), moved_dir = dir.file("moved"), moved = moved_dir + "/app.log";
    const auto cannot = [&](primary<proto>& p, const report& r) -> task<void> {
        auto& h = co_await p.fork();
        co_await print(h, numbered("before", 10));
        co_await until(
            dir.file("logs"), [&] { return has_line(log, "[worker 1] before 9"); }, "the lines before");
        std::filesystem::rename(dir.file("logs"), moved_dir);  // the path's directory is gone
        ::kill(::getpid(), SIGUSR1);
        co_await until(
            moved_dir, [&] { return has_line_with(moved, "cannot reopen"); }, "the complaint");
        co_await print(h, numbered("after", 10));
        co_await until(
            moved_dir, [&] { return has_line(moved, "[worker 1] after 9"); }, "the lines after");
        co_await leave(p, h, r);
    };
    const std::string seen =
        run_primary(logged(start_mode::fork, behaviour::print_commands, log, log_format::text), cannot);
    INFO(seen);
    auto want = prefixed("[worker 1] ", numbered("before", 10));
    want.push_back("cluster: cannot reopen the log file " + log +
                   " (No such file or directory): still writing to the old one");
    for (const auto& l : prefixed("[worker 1] ", numbered("after", 10))) want.push_back(l);
    CHECK(support::lines_of(file_text(moved)) == want);
    CHECK(!std::filesystem::exists(dir.file("logs")));
}
