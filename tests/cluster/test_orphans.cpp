// The primary as a child subreaper (reap_orphans = true, not PID 1): it reaps the orphans its
// workers leave, and its own workers' exits still come with their own status.
#include <catch2/catch.hpp>

#include "support/primary.hpp"
#include "support/waiting.hpp"

#include <cluster/cluster.hpp>
#include <cluster/detail/orphan_reaper.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/describe.hpp>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using namespace cluster;
using support::bounded;

namespace {

// Worker to primary: the pid of the orphan it left behind, still running.
struct orphan_made {
    std::int32_t pid = 0;
};
BOOST_DESCRIBE_STRUCT(orphan_made, (), (pid))

// Primary to worker: let the orphan end, then exit.
struct release {
    std::uint8_t unused = 0;
};
BOOST_DESCRIBE_STRUCT(release, (), (unused))

using orphan_proto = protocol<orphan_made, release>;

constexpr int worker_code = 42;

// A child forks a grandchild and exits: the grandchild, an orphan, goes to the nearest
// subreaper. It runs until `gate` reaches end of file, then exits.
pid_t leave_orphan(int gate_read, int gate_write) {
    int told[2];
    if (::pipe2(told, O_CLOEXEC) != 0) return -1;
    const pid_t middle = ::fork();
    if (middle == 0) {
        const pid_t orphan = ::fork();
        if (orphan == 0) {
            ::close(gate_write);
            ::close_range(3, static_cast<unsigned>(gate_read) - 1, 0);
            ::close_range(static_cast<unsigned>(gate_read) + 1, ~0u, 0);
            char c;
            (void)!::read(gate_read, &c, 1);
            ::_exit(7);
        }
        (void)!::write(told[1], &orphan, sizeof orphan);
        ::_exit(0);
    }
    ::close(told[1]);
    pid_t orphan = -1;
    if (middle < 0 || ::read(told[0], &orphan, sizeof orphan) != static_cast<ssize_t>(sizeof orphan)) orphan = -1;
    ::close(told[0]);
    while (middle > 0 && ::waitpid(middle, nullptr, 0) < 0 && errno == EINTR) {}
    return orphan;
}

task<void> orphan_leaving_worker(worker<orphan_proto>& w) {
    int gate[2];
    if (::pipe2(gate, O_CLOEXEC) != 0) ::_exit(2);
    const orphan_made made{leave_orphan(gate[0], gate[1])};
    ::close(gate[0]);
    (void)co_await w.send(made);
    (void)co_await w.receive<release>();
    ::close(gate[1]);
    ::_exit(worker_code);
}

pid_t parent_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream after_name(stat.substr(stat.rfind(')') + 1));
    char state = 0;
    pid_t ppid = 0;
    after_name >> state >> ppid;
    return ppid;
}

// The kernel (6.9 on) reports POLLHUP on a pidfd once its process is reaped, not only ended.
task<result<short>> reaped(int pidfd) { co_return co_await io::poll(pidfd, POLLHUP); }

task<void> orphans_reaped_workers_reported(primary<orphan_proto>& p) {
    constexpr int workers = 2;
    for (int i = 0; i < workers; ++i) (void)co_await support::fork_worker(p);
    std::vector<unique_fd> orphans;
    for (int i = 0; i < workers; ++i) {
        auto m = co_await bounded(p.next_message<orphan_made>());
        INFO("orphan " << m.value.pid);
        REQUIRE(m.value.pid > 0);
        CHECK(parent_of(m.value.pid) == ::getpid());  // adopted by the subreaper
        orphans.emplace_back(static_cast<int>(::syscall(SYS_pidfd_open, m.value.pid, 0)));
        REQUIRE(orphans.back().valid());
    }
    const release go{};
    for (auto* h : p.workers()) (void)co_await h->send(go);
    for (int i = 0; i < workers; ++i) {
        auto e = co_await bounded(p.next<exit_event>());
        CHECK(e.status.exited());
        CHECK(e.status.code == worker_code);
    }
    for (const auto& orphan : orphans) {
        auto hangup = co_await bounded(reaped(orphan.get()));
        CHECK(hangup.has_value());
        siginfo_t info{};
        const int waited =
            ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(orphan.get()), &info, WEXITED | WNOHANG);
        CHECK(waited < 0);
        CHECK(errno == ECHILD);  // no longer a child: the primary reaped it
    }
}

bool subreaper() {
    int is = 0;
    return ::prctl(PR_GET_CHILD_SUBREAPER, &is, 0, 0, 0) == 0 && is != 0;
}

}  // namespace

TEST_CASE("reap_orphans: the primary reaps its workers' orphans, and its workers' exit codes are theirs") {
    REQUIRE(::getpid() != 1);
    primary_options o;
    o.restart.mode = restart_mode::temporary;
    o.reap_orphans = true;
    support::with_primary<orphan_proto>(std::move(o), orphan_leaving_worker, orphans_reaped_workers_reported);
    CHECK_FALSE(subreaper());  // as it was before the primary
}

TEST_CASE("reap_orphans unset: not PID 1, the primary does not become a subreaper") {
    io_context ctx;
    const primary<orphan_proto> p(primary_options{}, orphan_leaving_worker);
    CHECK_FALSE(subreaper());
    CHECK_FALSE(detail::reaps_orphans(std::nullopt));
    CHECK(detail::reaps_orphans(true));
}
