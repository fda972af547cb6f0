// The cluster's worker lifecycle with real processes and signals, in fork and exec mode, and
// with threads where a thread can do the same: event order, kill, disconnect, exit codes, ids,
// silent output, scale, orphans, setup and roles.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/descriptors.hpp"
#include "support/events.hpp"
#include "support/lines.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/temp_dir.hpp"
#include "support/waiting.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::proto;
namespace behaviour = support::behaviour;
using support::as_configured;
using support::bounded;
using support::collect;
using support::events_through;
using support::exit_of;
using support::find_message;
using support::fork_worker;
using support::kinds_of;
using support::listed_ids;
using support::no_children;
using support::wait_limit;
using support::with_primary;

namespace {

using handle = worker_handle<proto>;
using support::open_fd_count;

constexpr unsigned many_workers = 64;
constexpr uid_t nobody = 65534;

primary_options options_for(start_mode mode, const char* worker_behaviour) {
    primary_options o;
    o.mode = mode;
    // These cases are about Node's semantics, where nothing restarts on its own.
    o.restart.mode = restart_mode::temporary;
    if (mode == start_mode::exec) {
        o.exec = support::program;
        o.args = std::vector<std::string>{};
    }
    o.env[support::behaviour_env] = worker_behaviour;
    return o;
}

std::string real_path(const char* path) {
    char resolved[PATH_MAX];
    return ::realpath(path, resolved) ? resolved : "";
}

// The program a worker of this mode runs, as its /proc/self/exe names it.
std::string expected_exe(start_mode mode) {
    return mode == start_mode::exec ? real_path(support::program) : real_path("/proc/self/exe");
}

// What worker id reported about itself; it returns afterwards, so this waits for its exit.
task<support::identity> identity_of(primary<proto>& p, unsigned id) {
    auto events = co_await events_through(p, id, event_kind::exit);
    const auto* me = find_message<support::identity>(events);
    REQUIRE(me);
    CHECK(exit_of(events).status.success());
    co_return *me;
}

// What worker id reported about itself among `events`.
support::identity identity_from(const std::vector<event<proto>>& events, unsigned id) {
    const support::identity* me = nullptr;
    for (const auto& e : events)
        if (e.worker_id() == id && !me) me = e.message<support::identity>();
    REQUIRE(me);
    return *me;
}

std::string read_file(const std::string& path) {
    const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    return fd ? support::read_all(fd.get()) : "";
}

// Forks n workers and waits until all are online. No Catch assertion: children of the
// test use it too.
task<std::vector<pid_t>> fork_until_online(primary<proto>& p, std::size_t n) {
    std::vector<pid_t> pids;
    for (std::size_t i = 0; i < n; ++i) {
        const handle& h = co_await p.fork(as_configured);
        pids.push_back(h.pid());
    }
    for (std::size_t online = 0; online < n;) {
        auto e = co_await p.next_event();
        online += e.is<online_event>();
    }
    co_return pids;
}

struct fork_failure {
    std::error_code code;
    std::string what;
};

// What fork() threw; fails the test if it did not throw.
task<fork_failure> failed_fork(primary<proto>& p, const fork_options& o) {
    std::optional<fork_failure> failure;
    try {
        (void)co_await p.fork(o);
    } catch (const std::system_error& e) {
        failure = fork_failure{e.code(), e.what()};
    }
    if (!failure) FAIL("fork() succeeded");
    co_return *failure;
}

}  // namespace

TEST_CASE("one worker's events come in order: fork, online, message, disconnect, exit") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec, start_mode::thread);
    const char* how = GENERATE(behaviour::hello_then_disconnect, behaviour::hello_then_return);
    INFO(to_string(mode) << " mode"
                         << ", worker: " << how);
    with_primary(options_for(mode, how), [&](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        const unsigned id = h.id();
        const pid_t pid = h.pid();
        auto events = co_await events_through(p, id, event_kind::exit);
        REQUIRE(kinds_of(events, id) == "fork online message disconnect exit");
        CHECK(events.front().get_if<fork_event>()->pid == pid);
        CHECK(find_message<support::hello>(events)->worker_id == id);
        const auto& gone = exit_of(events);
        CHECK(gone.pid == pid);
        CHECK(gone.status.success());
        // Only a worker that disconnected (rather than just returning) exited after disconnect.
        CHECK(gone.exited_after_disconnect == (std::string_view(how) == behaviour::hello_then_disconnect));
        for (const auto& e : events)
            if (auto* d = e.get_if<disconnect_event>()) CHECK_FALSE(d->error);
    });
}

TEST_CASE("kill(SIGKILL): a disconnect event, then an exit event with SIGKILL, not after disconnect") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO(to_string(mode) << " mode");
    with_primary(options_for(mode, behaviour::wait_for_disconnect), [](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        const unsigned id = h.id();
        auto started = co_await events_through(p, id, event_kind::online);
        CHECK(kinds_of(started, id) == "fork online");
        REQUIRE(h.kill(SIGKILL).has_value());
        auto ended = co_await events_through(p, id, event_kind::exit);
        CHECK(kinds_of(ended, id) == "disconnect exit");
        const auto& gone = exit_of(ended);
        CHECK(gone.status.signal == SIGKILL);
        CHECK_FALSE(gone.exited_after_disconnect);
        CHECK(ended.back().worker()->is_dead());
    });
}

namespace {
void count_signal(int) {}
}  // namespace

TEST_CASE("a fork-mode worker starts with the primary's signal handlers back to the default, as exec would") {
    struct sigaction caught {
    }, previous{};
    caught.sa_handler = count_signal;
    // SIGUSR2: a worker gives SIGUSR1 a handler of its own (logrotate may signal the group).
    REQUIRE(::sigaction(SIGUSR2, &caught, &previous) == 0);
    with_primary(options_for(start_mode::fork, behaviour::wait_for_disconnect), [](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        const unsigned id = h.id();
        (void)co_await events_through(p, id, event_kind::online);
        REQUIRE(h.kill(SIGUSR2).has_value());
        auto ended = co_await events_through(p, id, event_kind::exit);
        CHECK(exit_of(ended).status.signal == SIGUSR2);  // the default action: it ends the worker
    });
    ::sigaction(SIGUSR2, &previous, nullptr);
}

TEST_CASE("a graceful disconnect ends the worker's receive(), its code returns, it exits 0 after disconnect") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec, start_mode::thread);
    const bool primary_asks = GENERATE(true, false);
    INFO(to_string(mode) << " mode"
                         << (primary_asks ? ", the primary disconnects it" : ", the worker disconnects itself"));
    const support::temp_dir dir;
    const std::string marker = dir.file("marker");
    auto options = options_for(mode, primary_asks ? behaviour::wait_for_disconnect : behaviour::leave_then_wait);
    options.env[support::setting::marker] = marker;
    with_primary(options, [&](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        const unsigned id = h.id();
        (void)co_await events_through(p, id, event_kind::online);
        if (primary_asks) {
            auto left = co_await bounded(h.disconnect());
            CHECK(left.has_value());
            CHECK_FALSE(h.is_connected());
            CHECK(h.exited_after_disconnect());
        }
        auto ended = co_await events_through(p, id, event_kind::exit);
        CHECK(kinds_of(ended, id) == "disconnect exit");
        CHECK_FALSE(ended.front().get_if<disconnect_event>()->error);
        const auto& gone = exit_of(ended);
        CHECK(gone.status.success());
        CHECK(gone.exited_after_disconnect);
    });
    CHECK(read_file(marker) == support::finished_mark);
}

TEST_CASE("a worker that throws exits with code 1, one that returns with code 0") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec, start_mode::thread);
    const bool throws = GENERATE(true, false);
    INFO(to_string(mode) << " mode" << (throws ? ", the worker throws" : ", the worker returns"));
    with_primary(options_for(mode, throws ? behaviour::throw_at_once : behaviour::hello_then_return),
                 [&](primary<proto>& p) -> task<void> {
                     const unsigned id = (co_await fork_worker(p)).id();
                     auto events = co_await events_through(p, id, event_kind::exit);
                     const auto& gone = exit_of(events);
                     CHECK(gone.status.signal == 0);
                     CHECK(gone.status.code == (throws ? 1 : 0));
                     CHECK_FALSE(gone.exited_after_disconnect);
                 });
}

TEST_CASE("ids count from 1 and are never reused, workers() lists the living, worker(id) forgets the exited") {
    with_primary(options_for(start_mode::fork, behaviour::wait_for_disconnect), [](primary<proto>& p) -> task<void> {
        for (unsigned expected = 1; expected <= 3; ++expected) {
            const unsigned id = (co_await fork_worker(p)).id();
            CHECK(id == expected);
        }
        CHECK(listed_ids(p) == std::vector<unsigned>{1, 2, 3});

        REQUIRE(p.worker(2)->kill(SIGKILL).has_value());
        auto killed = co_await events_through(p, 2, event_kind::exit);
        CHECK(p.worker(2) == nullptr);
        CHECK(killed.back().worker()->id() == 2);  // the event still holds the handle
        CHECK(listed_ids(p) == std::vector<unsigned>{1, 3});
        const unsigned fourth = (co_await fork_worker(p)).id();
        CHECK(fourth == 4);

        auto left = co_await bounded(p.worker(1)->disconnect());
        CHECK(left.has_value());
        (void)co_await events_through(p, 1, event_kind::exit);
        CHECK(p.worker(1) == nullptr);
        const unsigned fifth = (co_await fork_worker(p)).id();
        CHECK(fifth == 5);
        CHECK(listed_ids(p) == std::vector<unsigned>{3, 4, 5});

        // Exited but their exit events not taken yet: not listed, still known by id.
        co_await bounded(p.disconnect_all());
        CHECK(listed_ids(p).empty());
        for (unsigned id : {3u, 4u, 5u}) {
            REQUIRE(p.worker(id) != nullptr);
            CHECK(p.worker(id)->is_dead());
        }
        (void)co_await collect<exit_event>(p, 3);
        for (unsigned id : {3u, 4u, 5u}) CHECK(p.worker(id) == nullptr);
    });
}

namespace {

// Two chatty silent workers, waited for until both exit; in a child whose stdout and stderr
// are captured, so no Catch assertion here.
task<void> run_chatty_workers(primary<proto>& p) {
    for (int i = 0; i < 2; ++i) (void)co_await p.fork(as_configured);
    for (int exits = 0; exits < 2;) {
        auto e = co_await p.next_event();
        exits += e.is<exit_event>();
    }
}

[[noreturn]] void chatty_primary(start_mode mode) {
    int code = 0;
    try {
        io_context ctx;
        auto options = options_for(mode, behaviour::chatty);
        options.silent = true;
        primary<proto> p(options, support::worker_main);
        auto done = sync_wait(with_timeout(run_chatty_workers(p), wait_limit));
        code = done ? 0 : 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "chatty primary: %s\n", e.what());
        code = 3;
    }
    std::fflush(nullptr);
    ::_exit(code);
}

struct captured {
    std::optional<exit_status> status;
    std::string out, err;
};

captured run_chatty_primary(start_mode mode) {
    const unique_fd out(::memfd_create("stdout", MFD_CLOEXEC)), err(::memfd_create("stderr", MFD_CLOEXEC));
    REQUIRE((out && err));
    std::fflush(nullptr);
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) {
        if (::dup2(out.get(), STDOUT_FILENO) < 0 || ::dup2(err.get(), STDERR_FILENO) < 0) ::_exit(4);
        chatty_primary(mode);
    }
    io_context ctx;
    auto status = sync_wait(bounded(child->wait()));
    return {status ? std::optional(*status) : std::nullopt, support::read_all(out.get()), support::read_all(err.get())};
}

// Splits relayed output by worker: prefix → its lines, in order, without the prefix.
std::map<std::string, std::vector<std::string>> lines_by_prefix(const std::string& text) {
    std::map<std::string, std::vector<std::string>> out;
    std::size_t at = 0;
    for (std::size_t nl; (nl = text.find('\n', at)) != std::string::npos; at = nl + 1) {
        const std::string line = text.substr(at, nl - at);
        const auto end = line.find("] ");
        if (end == std::string::npos)
            out[""].push_back(line);
        else
            out[line.substr(0, end + 2)].push_back(line.substr(end + 2));
    }
    if (at != text.size()) out["(unterminated)"].push_back(text.substr(at));
    return out;
}

std::vector<std::string> chatty_lines(std::string_view stream, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) out.push_back(support::chatty_line(stream, i));
    if (stream == "out") out.emplace_back(support::chatty_tail);
    return out;
}

void check_relayed(const std::string& text, std::string_view stream, int n) {
    const auto by_prefix = lines_by_prefix(text);
    std::set<std::string> prefixes;
    for (const auto& [prefix, lines] : by_prefix) prefixes.insert(prefix);
    CHECK(prefixes == std::set<std::string>{"[worker 1] ", "[worker 2] "});
    for (const auto& [prefix, lines] : by_prefix) {
        INFO(stream << " of " << prefix);
        CHECK(support::first_difference(lines, chatty_lines(stream, n)) == "");
    }
}

}  // namespace

TEST_CASE("silent workers' stdout and stderr reach the primary's, prefixed, whole and in order") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO(to_string(mode) << " mode");
    const std::size_t fds = open_fd_count();
    const auto got = run_chatty_primary(mode);
    {
        INFO("the primary's stderr begins: " << got.err.substr(0, 300));
        REQUIRE(got.status.has_value());
        CHECK(got.status->success());
    }
    check_relayed(got.out, "out", support::chatty_out_lines);
    check_relayed(got.err, "err", support::chatty_err_lines);
    CHECK(open_fd_count() == fds);
    CHECK(no_children());
}

TEST_CASE("64 workers on a small machine all come online and all leave after disconnect_all()") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    INFO(to_string(mode) << " mode");
    with_primary(options_for(mode, behaviour::wait_for_disconnect), [](primary<proto>& p) -> task<void> {
        for (unsigned i = 0; i < many_workers; ++i) (void)co_await fork_worker(p);
        auto online = co_await collect<online_event>(p, many_workers);
        CHECK(online.size() == many_workers);
        CHECK(p.workers().size() == many_workers);
        co_await bounded(p.disconnect_all());
        auto exits = co_await collect<exit_event>(p, many_workers);
        std::set<unsigned> ids;
        unsigned clean = 0;
        for (const auto& x : exits) {
            ids.insert(x.worker_id);
            clean += x.exited_after_disconnect && x.status.success();
        }
        CHECK(clean == many_workers);
        CHECK(ids.size() == many_workers);
        CHECK(*ids.begin() == 1);
        CHECK(*ids.rbegin() == many_workers);
        CHECK(p.workers().empty());
    });
}

namespace {

// Answers each ping with a note of how many descriptors it has open.
task<void> count_own_fds(worker<proto>& w) {
    while (auto m = co_await w.receive()) {
        if (!m->is<support::ping>() || !m->is_request()) continue;
        const support::note n{w.id(), std::to_string(open_fd_count())};
        (void)co_await w.reply(*m, n);
    }
}

}  // namespace

TEST_CASE("a fork-mode worker holds none of the primary's descriptors for the workers before it") {
    auto o = options_for(start_mode::fork, behaviour::hello_then_return);  // count_own_fds runs instead
    o.stdio = {output_mode::relay, output_mode::pipe};                     // each sibling's link, pidfd and two pipes
    support::with_primary<proto>(std::move(o), count_own_fds, [](primary<proto>& p) -> task<void> {
        std::vector<std::string> counts;
        for (int i = 0; i < 8; ++i) {
            auto& h = co_await fork_worker(p);
            const support::ping ask{};
            auto counted = co_await h.request<support::note>(ask, wait_limit);
            REQUIRE(counted.has_value());
            counts.push_back(counted->text);
        }
        CHECK(std::count(counts.begin(), counts.end(), counts.front()) == 8);  // the eighth as the first
    });
}

TEST_CASE("200 fork/exit cycles leave no zombie and no descriptor behind") {
    with_primary(options_for(start_mode::fork, behaviour::hello_then_return), [](primary<proto>& p) -> task<void> {
        const std::size_t fds = open_fd_count();
        int clean = 0;
        for (int i = 0; i < 200; ++i) {
            const unsigned id = (co_await fork_worker(p)).id();
            auto events = co_await events_through(p, id, event_kind::exit);
            clean += exit_of(events).status.success();
        }
        CHECK(clean == 200);
        CHECK(no_children());
        CHECK(open_fd_count() == fds);
    });
}

namespace {

// The primary's two steps as separate sync_wait()s, the first returning while its worker
// runs and waits: in a child, so a loop that never returns fails the test instead of hanging it.
[[noreturn]] void primary_returning_early() {
    int code = 3;
    try {
        io_context ctx;
        primary<proto> p(options_for(start_mode::fork, behaviour::wait_for_disconnect), support::worker_main);
        (void)sync_wait(fork_until_online(p, 1));
        sync_wait(p.shutdown());
        code = p.workers().empty() ? 0 : 4;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "primary returning early: %s\n", e.what());
    }
    std::fflush(nullptr);
    ::_exit(code);
}

}  // namespace

TEST_CASE("sync_wait() returns when its task is done, while a live worker's ops are still in flight") {
    std::fflush(nullptr);
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) primary_returning_early();
    io_context ctx;
    auto status = sync_wait(bounded(child->wait()));
    REQUIRE(status.has_value());
    CHECK(status->success());
}

TEST_CASE("shutdown() kills the workers that ignore its disconnect once shutdown_timeout has passed") {
    auto options = options_for(start_mode::fork, behaviour::ignore_disconnect);
    options.shutdown_timeout = 200ms;
    with_primary(options, [](primary<proto>& p) -> task<void> {
        (void)co_await bounded(fork_until_online(p, 2));
        const auto began = std::chrono::steady_clock::now();
        co_await bounded(p.shutdown());
        CHECK(std::chrono::steady_clock::now() - began >= 200ms);
        auto exits = co_await collect<exit_event>(p, 2);
        for (const auto& x : exits) {
            CHECK(x.status.signal == SIGKILL);
            CHECK(x.exited_after_disconnect);  // it was asked to leave
        }
    });
}

TEST_CASE("destroying a primary kills and reaps its running workers, and closes their descriptors") {
    const std::size_t fds = open_fd_count();
    {
        io_context ctx;
        primary<proto> p(options_for(start_mode::fork, behaviour::ignore_disconnect), support::worker_main);
        const auto pids = sync_wait(bounded(fork_until_online(p, 3)));
        CHECK(pids.size() == 3);
    }
    CHECK(open_fd_count() == fds);
    CHECK(no_children());
}

namespace {

constexpr std::size_t orphan_count = 4;

// A primary in a child of the test, so no Catch assertion here: reports its workers' pids
// once they are online, then waits to be killed.
[[noreturn]] void orphaning_primary(start_mode mode, int report_fd) {
    try {
        io_context ctx;
        auto o = options_for(mode, behaviour::wait_for_disconnect);
        // The kernel closes a dying primary's sockets before it sends PDEATHSIG, so an exec'd
        // worker may start a normal exit first. Under LeakSanitizer, that exit clones a
        // tracer process, which outlives the worker SIGKILLed under it and is left to this
        // test as a child that no worker is. Nothing of the library's: no leak check there.
        o.env["ASAN_OPTIONS"] = "detect_leaks=0";
        primary<proto> p(o, support::worker_main);
        auto pids = sync_wait(with_timeout(fork_until_online(p, orphan_count), wait_limit));
        const auto size = static_cast<ssize_t>(orphan_count * sizeof(pid_t));
        if (pids && ::write(report_fd, pids->data(), static_cast<std::size_t>(size)) == size)
            for (;;) ::pause();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "orphaning primary: %s\n", e.what());
    }
    ::_exit(3);
}

task<std::vector<pid_t>> read_pids(int fd) {
    std::vector<pid_t> pids(orphan_count);
    auto* bytes = reinterpret_cast<std::byte*>(pids.data());
    const std::size_t size = orphan_count * sizeof(pid_t);
    for (std::size_t got = 0; got < size;) {
        auto n = co_await io::read(fd, std::span(bytes + got, size - got));
        if (!n || *n == 0) FAIL("the primary did not report its workers");
        got += *n;
    }
    co_return pids;
}

// Orphans reaped by the test for as long as it lives (they are not its own children).
class subreaper {
public:
    subreaper() {
        ::prctl(PR_GET_CHILD_SUBREAPER, &previous_);
        REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    }
    subreaper(const subreaper&) = delete;
    subreaper& operator=(const subreaper&) = delete;
    ~subreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, previous_); }

private:
    int previous_ = 0;
};

// Processes held by pidfd; any still running when this goes is killed, and all are reaped.
class orphans {
public:
    explicit orphans(const std::vector<pid_t>& pids) {
        for (pid_t pid : pids) {
            const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
            REQUIRE(fd >= 0);
            fds_.emplace_back(fd);
        }
    }
    orphans(const orphans&) = delete;
    orphans& operator=(const orphans&) = delete;
    ~orphans() {
        for (const auto& fd : fds_) {
            ::syscall(SYS_pidfd_send_signal, fd.get(), SIGKILL, nullptr, 0);
            siginfo_t info{};
            ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd.get()), &info, WEXITED);
        }
    }

    // How many are still running at the deadline.
    [[nodiscard]] int running_at(std::chrono::steady_clock::time_point deadline) const {
        int running = 0;
        for (const auto& fd : fds_) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd pfd{fd.get(), POLLIN, 0};
            running += ::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0))) != 1;
        }
        return running;
    }

private:
    std::vector<unique_fd> fds_;
};

}  // namespace

TEST_CASE("when the primary is SIGKILLed, every worker is gone within 500 ms") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO(to_string(mode) << " mode");
    const std::size_t fds = open_fd_count();
    {
        const subreaper reaper;
        auto [report_r, report_w] = support::make_pipe();
        std::fflush(nullptr);
        auto primary_process = child_process::fork();
        REQUIRE(primary_process.has_value());
        if (primary_process->is_child()) {
            report_r.reset();
            orphaning_primary(mode, report_w.get());
        }
        report_w.reset();
        io_context ctx;
        const orphans workers(sync_wait(bounded(read_pids(report_r.get()))));
        const auto killed_at = std::chrono::steady_clock::now();
        REQUIRE(primary_process->send_signal(SIGKILL).has_value());
        auto status = sync_wait(bounded(primary_process->wait()));
        REQUIRE(status.has_value());
        CHECK(status->signal == SIGKILL);
        CHECK(workers.running_at(killed_at + 500ms) == 0);
    }
    CHECK(open_fd_count() == fds);
    CHECK(no_children());
}

TEST_CASE("a cwd that does not exist: fork() throws naming the chdir, and leaks nothing") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO(to_string(mode) << " mode");
    with_primary(options_for(mode, behaviour::hello_then_return), [](primary<proto>& p) -> task<void> {
        fork_options nowhere;
        nowhere.cwd = "/nonexistent/cluster-test-cwd";
        const auto failure = co_await bounded(failed_fork(p, nowhere));
        CHECK(failure.code == std::errc::no_such_file_or_directory);
        CHECK_THAT(failure.what,
                   Catch::Contains("chdir to the cwd option") && Catch::Contains("/nonexistent/cluster-test-cwd"));
        CHECK(p.workers().empty());
        CHECK(no_children());
        auto tried = co_await bounded(p.try_fork(nowhere));
        REQUIRE_FALSE(tried.has_value());
        CHECK(tried.error() == std::errc::no_such_file_or_directory);
        // The failures left no event behind: the next one is the next worker's.
        const unsigned id = (co_await fork_worker(p)).id();
        auto events = co_await events_through(p, id, event_kind::exit);
        CHECK(events.front().get_if<fork_event>() != nullptr);
        CHECK(kinds_of(events, id) == "fork online message disconnect exit");
    });
}

TEST_CASE("exec of a program that does not exist: fork() throws naming the execve, and leaks nothing") {
    auto options = options_for(start_mode::exec, behaviour::hello_then_return);
    options.exec = "/nonexistent/cluster-test-program";
    with_primary(options, [](primary<proto>& p) -> task<void> {
        const auto failure = co_await bounded(failed_fork(p, as_configured));
        CHECK(failure.code == std::errc::no_such_file_or_directory);
        CHECK_THAT(failure.what, Catch::Contains("execve of the exec option") &&
                                     Catch::Contains("/nonexistent/cluster-test-program"));
        CHECK(p.workers().empty());
        CHECK(no_children());
    });
}

TEST_CASE("uid and gid: a root primary's worker runs as them, anyone else's fork() fails naming setuid") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO(to_string(mode) << " mode");
    if (::geteuid() == 0) {
        auto options = options_for(mode, behaviour::report_identity);
        options.uid = nobody;
        options.gid = nobody;
        with_primary(options, [](primary<proto>& p) -> task<void> {
            const unsigned id = (co_await fork_worker(p)).id();
            const auto me = co_await identity_of(p, id);
            CHECK(me.uid == nobody);
            CHECK(me.gid == nobody);
        });
    } else {
        with_primary(options_for(mode, behaviour::report_identity), [](primary<proto>& p) -> task<void> {
            fork_options other_user;
            other_user.uid = ::getuid() == nobody ? nobody - 1 : nobody;
            const auto failure = co_await bounded(failed_fork(p, other_user));
            CHECK(failure.code == std::errc::operation_not_permitted);
            CHECK_THAT(failure.what, Catch::Contains("setuid to the uid option"));
        });
    }
}

namespace {

// Puts the thread's affinity mask back however the test ends.
class affinity_restorer {
public:
    explicit affinity_restorer(const cpu_set_t& saved) : saved_(saved) {}
    affinity_restorer(const affinity_restorer&) = delete;
    affinity_restorer& operator=(const affinity_restorer&) = delete;
    ~affinity_restorer() { ::sched_setaffinity(0, sizeof saved_, &saved_); }

private:
    cpu_set_t saved_;
};

int first_cpu(const cpu_set_t& set) {
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set)) return cpu;
    return -1;
}

}  // namespace

TEST_CASE("cpu_count() counts the affinity mask within the cgroup quota, and drops when the mask narrows to one CPU") {
    cpu_set_t all;
    CPU_ZERO(&all);
    REQUIRE(::sched_getaffinity(0, sizeof all, &all) == 0);
    const unsigned quota = detail::cgroup_cpu_quota().value_or(UINT_MAX);
    CHECK(cpu_count() == std::min(static_cast<unsigned>(CPU_COUNT(&all)), quota));
    const affinity_restorer restore(all);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first_cpu(all), &one);
    REQUIRE(::sched_setaffinity(0, sizeof one, &one) == 0);
    CHECK(cpu_count() == 1);
}

TEST_CASE("is_primary(), is_worker() and this_worker_id() on both sides") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec, start_mode::thread);
    INFO(to_string(mode) << " mode");
    CHECK(is_primary());
    CHECK_FALSE(is_worker());
    CHECK(this_worker_id() == 0);
    with_primary(options_for(mode, behaviour::report_identity), [&](primary<proto>& p) -> task<void> {
        // Two in turn, so an id other than 1 is seen too.
        for (unsigned expected = 1; expected <= 2; ++expected) {
            const unsigned id = (co_await fork_worker(p)).id();
            const auto me = co_await identity_of(p, id);
            CHECK_FALSE(me.primary);
            CHECK(me.worker);
            CHECK(me.worker_id == expected);
            CHECK(me.uid == ::getuid());
            CHECK(me.exe == expected_exe(mode));
        }
    });
    // A forked worker changed its own role, not the primary's.
    CHECK(is_primary());
    CHECK(this_worker_id() == 0);
}

namespace {

bool accepts_connections(const std::string& address, std::uint16_t port) {
    const unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    return ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr) == 1 &&
           ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}

}  // namespace

TEST_CASE("announce_listening() gives the primary a listening event with the socket's address and port") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec, start_mode::thread);
    INFO(to_string(mode) << " mode");
    with_primary(options_for(mode, behaviour::announce_listening), [](primary<proto>& p) -> task<void> {
        handle& h = co_await fork_worker(p);
        const unsigned id = h.id();
        auto events = co_await events_through(p, id, event_kind::message);
        REQUIRE(kinds_of(events, id) == "fork online listening message");
        const auto& l = *events[2].get_if<listening_event>();
        CHECK(l.worker_id == id);
        CHECK(l.family == AF_INET);
        CHECK(l.address == "127.0.0.1");
        CHECK(l.port == find_message<support::bound_port>(events)->port);
        CHECK(accepts_connections(l.address, l.port));
        auto left = co_await bounded(h.disconnect());
        CHECK(left.has_value());
        auto ended = co_await events_through(p, id, event_kind::exit);
        CHECK(exit_of(ended).status.success());
    });
}

TEST_CASE("a mixed cluster: a thread worker and an exec-mode process worker side by side, each itself") {
    auto o = options_for(start_mode::thread, behaviour::report_identity);
    o.env[support::setting::tag] = "shared";
    with_primary(o, [](primary<proto>& p) -> task<void> {
        handle& thread = co_await fork_worker(p);
        fork_options as_process;
        as_process.mode = start_mode::exec;
        as_process.exec = support::program;
        as_process.args = std::vector<std::string>{};
        handle& process = co_await fork_worker(p, as_process);
        CHECK(thread.is_thread());
        CHECK_FALSE(process.is_thread());
        CHECK(thread.pid() == ::getpid());
        CHECK(process.pid() != ::getpid());
        const unsigned thread_id = thread.id(), process_id = process.id();
        // Both report and exit, in either order: every event until both have exited, each
        // worker's identity then picked out by its id.
        std::vector<event<proto>> events;
        for (unsigned exited = 0; exited < 2;) {
            events.push_back(co_await bounded(p.next_event()));
            if (const auto* x = events.back().get_if<exit_event>()) {
                CHECK(x->status.success());
                ++exited;
            }
        }
        const auto in_thread = identity_from(events, thread_id);
        const auto in_process = identity_from(events, process_id);
        for (const auto* me : {&in_thread, &in_process}) {
            CHECK(me->worker);
            CHECK_FALSE(me->primary);
            CHECK(me->tag == "shared");
        }
        CHECK(in_thread.worker_id == thread_id);
        CHECK(in_process.worker_id == process_id);
        CHECK(in_thread.exe == expected_exe(start_mode::fork));
        CHECK(in_process.exe == expected_exe(start_mode::exec));
    });
}

TEST_CASE("setup() emits a setup event, and workers forked after it get the new options") {
    auto before = options_for(start_mode::fork, behaviour::report_identity);
    before.env[support::setting::tag] = "first";
    with_primary(before, [](primary<proto>& p) -> task<void> {
        const unsigned first = (co_await fork_worker(p)).id();
        const auto old = co_await identity_of(p, first);
        CHECK(old.tag == "first");
        CHECK(old.exe == expected_exe(start_mode::fork));

        auto after = options_for(start_mode::exec, behaviour::report_identity);
        after.env[support::setting::tag] = "second";
        p.setup(after);
        auto e = co_await bounded(p.next_event());
        const auto* setup = e.get_if<setup_event>();
        REQUIRE(setup);
        CHECK(setup->settings.mode == start_mode::exec);
        CHECK(setup->settings.env.at(support::setting::tag) == "second");
        CHECK(e.worker() == nullptr);
        CHECK(p.settings().mode == start_mode::exec);

        const unsigned second = (co_await fork_worker(p)).id();
        const auto now = co_await identity_of(p, second);
        CHECK(now.tag == "second");
        CHECK(now.exe == expected_exe(start_mode::exec));
    });
}
