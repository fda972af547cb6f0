// The primary under systemd, with real workers: what it tells NOTIFY_SOCKET (a path or an
// abstract name) and in which order — READY=1, STATUS=, RELOADING=1 and READY=1 around a
// reload, STOPPING=1, the watchdog's beat — that no worker, forked or exec'd, sees systemd's
// variables, and that a notification socket that is not there costs one line and nothing else.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/captured_stderr.hpp"
#include "support/notify_socket.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/temp_dir.hpp"
#include "support/waiting.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::bounded;
using support::fork_worker;
using support::notify_socket;
using support::proto;
using support::scripted;
using support::with_primary;
namespace behaviour = support::behaviour;

namespace {

// The datagrams up to the first that starts with `end` (returned), each of those before it
// in `before`.
task<std::string> until_starting(notify_socket& systemd, std::string_view end, std::vector<std::string>& before) {
    for (;;) {
        auto d = co_await systemd.next_not_watchdog();
        if (d.starts_with(end)) co_return d;
        before.push_back(std::move(d));
    }
}

bool all_status(const std::vector<std::string>& lines, std::string_view containing = {}) {
    return std::all_of(lines.begin(), lines.end(), [containing](const std::string& l) {
        return l.starts_with("STATUS=") && l.find(containing) != std::string::npos;
    });
}

// The worker's report_systemd_env note: the systemd variables it found set.
task<std::string> systemd_env_of_worker(primary<proto>& p) {
    auto m = co_await bounded(p.next_message<support::note>(), "the worker's environment");
    co_return m.value.text;
}

}  // namespace

TEST_CASE("READY=1 once the workers are online, RELOADING=1 and READY=1 around a reload, STATUS=, then STOPPING=1") {
    support::temp_dir dir;
    notify_socket systemd(dir.file("notify"));
    with_primary(
        scripted(start_mode::fork, behaviour::report_systemd_env), [&systemd](primary<proto>& p) -> task<void> {
            (void)co_await fork_worker(p);
            (void)co_await fork_worker(p);
            const auto ready = co_await systemd.next();
            CHECK(ready == "READY=1\nSTATUS=2 workers, 0 restarts");
            CHECK(p.is_ready());

            const auto reloaded = co_await bounded(p.reload());
            CHECK(reloaded.ok);
            const auto reloading = co_await systemd.next();
            CHECK(reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="));
            CHECK(reloading.ends_with("\nSTATUS=2 workers, 0 restarts, reloading 0/2"));
            std::vector<std::string> during;
            const auto ready_again = co_await until_starting(systemd, "READY=1", during);
            CHECK(ready_again == "READY=1\nSTATUS=2 workers, 0 restarts");
            CHECK(all_status(during, "reloading"));
            CHECK(std::count(during.begin(), during.end(), "STATUS=2 workers, 0 restarts, reloading 1/2") == 1);
            CHECK(std::count(during.begin(), during.end(), "STATUS=2 workers, 0 restarts, reloading 2/2") == 1);

            // A crash: the restart shows in the status, and the slot serves again.
            const auto alive = p.workers();
            REQUIRE(!alive.empty());
            REQUIRE(alive.front()->kill(SIGKILL));
            std::vector<std::string> restarting;
            const auto restarted = co_await until_starting(systemd, "STATUS=2 workers, 1 restart", restarting);
            CHECK(restarted == "STATUS=2 workers, 1 restart");
            CHECK(all_status(restarting));

            co_await p.shutdown();
            const auto stopping = co_await systemd.next();
            CHECK(stopping == "STOPPING=1\nSTATUS=stopping");
        });
}

TEST_CASE("to an abstract socket, WATCHDOG=1 from the start and at half WATCHDOG_USEC, exec-mode workers too") {
    notify_socket systemd("@cluster-test-systemd-" + std::to_string(::getpid()));
    ::setenv("WATCHDOG_USEC", "20000", 1);
    with_primary(scripted(start_mode::exec, behaviour::report_systemd_env),
                 [&systemd](primary<proto>& p) -> task<void> {
                     // Sent as the primary started, before any worker.
                     const auto first = co_await systemd.next();
                     CHECK(first == "WATCHDOG=1");
                     (void)co_await fork_worker(p);
                     std::vector<std::string> before;
                     const auto ready = co_await until_starting(systemd, "READY=1", before);
                     CHECK(ready == "READY=1\nSTATUS=1 worker, 0 restarts");
                     std::vector<std::chrono::steady_clock::time_point> beats;
                     while (beats.size() < 4) {
                         const auto d = co_await systemd.next();
                         if (d == "WATCHDOG=1") beats.push_back(std::chrono::steady_clock::now());
                     }
                     for (std::size_t i = 1; i < beats.size(); ++i) CHECK(beats[i] - beats[i - 1] >= 5ms);
                     co_await p.shutdown();
                     std::vector<std::string> statuses;
                     const auto stopping = co_await until_starting(systemd, "STOPPING=1", statuses);
                     CHECK(stopping == "STOPPING=1\nSTATUS=stopping");
                 });
}

TEST_CASE("no worker, forked or exec'd, inherits NOTIFY_SOCKET, WATCHDOG_* or LISTEN_* (here for another process)") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    support::temp_dir dir;
    notify_socket systemd(dir.file("notify"));
    ::setenv("WATCHDOG_USEC", "60000000", 1);
    ::setenv("WATCHDOG_PID", "1", 1);
    // Not for us: ignored (fd 3, whatever it is here, is not touched), and unset all the same.
    ::setenv("LISTEN_PID", "1", 1);
    ::setenv("LISTEN_FDS", "1", 1);
    ::setenv("LISTEN_FDNAMES", "web", 1);
    with_primary(scripted(mode, behaviour::report_systemd_env), [](primary<proto>& p) -> task<void> {
        for (const char* name :
             {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}) {
            INFO(name);
            CHECK(std::getenv(name) == nullptr);
        }
        (void)co_await fork_worker(p);
        const auto found = co_await systemd_env_of_worker(p);
        CHECK(found.empty());
    });
}

TEST_CASE("a NOTIFY_SOCKET that is not there: one line on stderr, and the cluster serves, reloads and stops") {
    support::temp_dir dir;
    ::setenv("NOTIFY_SOCKET", dir.file("missing").c_str(), 1);
    ::setenv("WATCHDOG_USEC", "2000", 1);  // a beat every millisecond: a failure each time
    const auto said = support::stderr_of([] {
        with_primary(scripted(start_mode::fork, behaviour::answer_work), [](primary<proto>& p) -> task<void> {
            (void)co_await fork_worker(p);
            (void)co_await fork_worker(p);
            const bool ready = co_await bounded(p.until_ready());
            CHECK(ready);
            const auto reloaded = co_await bounded(p.reload());
            CHECK(reloaded.ok);
            auto answer = co_await support::ask(*p.workers().front(), 7);
            REQUIRE(answer.has_value());
            CHECK(answer->id == 7);
        });
    });
    const std::string line = "cluster: sd_notify: " + dir.file("missing") + ": No such file or directory";
    CHECK(said.find(line) != std::string::npos);
    CHECK(said.find("cluster: sd_notify:") == said.rfind("cluster: sd_notify:"));
}
