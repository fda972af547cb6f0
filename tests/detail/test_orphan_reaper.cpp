// detail::orphan_reaper: it reaps the children no io::child_process holds, and leaves the
// ones a handle holds to that handle, which still gets their exit status.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <catch2/catch.hpp>

#include <cluster/detail/orphan_reaper.hpp>
#include <cluster/io/child_process.hpp>

using cluster::detail::orphan_reaper;

namespace {

// Until `pid`, a child, has ended; it stays a zombie to be reaped.
void until_ended(pid_t pid) {
    siginfo_t info{};
    while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR) {}
}

}  // namespace

TEST_CASE("reap_ended(): an ended child nobody holds is reaped, a held one keeps its status for its handle") {
    auto held = cluster::io::child_process::fork();
    REQUIRE(held.has_value());
    if (held->is_child()) ::_exit(42);
    const pid_t stray = ::fork();
    REQUIRE(stray >= 0);
    if (stray == 0) ::_exit(3);
    until_ended(held->pid());
    until_ended(stray);

    const auto children = cluster::detail::children_of_this_process();
    CHECK(std::count(children.begin(), children.end(), held->pid()) == 1);
    CHECK(std::count(children.begin(), children.end(), stray) == 1);
    CHECK(cluster::io::child_process::held(held->pid()));
    CHECK_FALSE(cluster::io::child_process::held(stray));

    const orphan_reaper reaper([](pid_t pid) { return cluster::io::child_process::held(pid); });
    reaper.reap_ended();

    siginfo_t info{};
    CHECK(::waitid(P_PID, static_cast<id_t>(stray), &info, WEXITED | WNOHANG) < 0);
    CHECK(errno == ECHILD);
    auto status = held->try_wait();
    REQUIRE(status.has_value());
    CHECK(status->code == 42);
    CHECK_FALSE(cluster::io::child_process::held(held->pid()));
}
