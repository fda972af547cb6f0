// RLIMIT_NOFILE and the primary: it raises its soft limit to the hard one, as Node does, so
// workers whose descriptors pass the soft limit still start; and out of descriptors, fork()'s
// error says the limit and what each worker takes.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/descriptors.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <string>
#include <system_error>

using namespace cluster;
using Catch::Matchers::Contains;
using support::bounded;
using support::fork_worker;
using support::proto;
using support::scripted;
using support::with_primary;
namespace behaviour = support::behaviour;

namespace {

// RLIMIT_NOFILE as it was, back at the end of the scope.
class limit_kept {
public:
    limit_kept() { REQUIRE(::getrlimit(RLIMIT_NOFILE, &before_) == 0); }
    limit_kept(const limit_kept&) = delete;
    limit_kept& operator=(const limit_kept&) = delete;
    ~limit_kept() { ::setrlimit(RLIMIT_NOFILE, &before_); }
    [[nodiscard]] rlim_t hard() const noexcept { return before_.rlim_max; }

private:
    rlimit before_{};
};

// All `fd` gives until its end.
std::string read_to_end(int fd) {
    std::string out;
    char buf[512];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    return out;
}

constexpr int relayed_workers = 8;  // 4 of the primary's descriptors each: over the soft limit below

task<std::string> first_refusal(primary<proto>& p) {
    try {
        for (int i = 0; i < 64; ++i) (void)co_await p.fork();
    } catch (const std::system_error& e) {
        co_return e.what();
    }
    co_return "every worker started";
}

}  // namespace

TEST_CASE("a primary raises its soft RLIMIT_NOFILE to the hard one: workers whose descriptors pass the soft "
          "limit start") {
    const limit_kept kept;
    // A new descriptor takes the lowest number free, below the soft limit: 16 are left.
    const std::size_t before = support::open_fd_count();
    const rlim_t soft = before + 16;
    if (kept.hard() < soft + 4 * relayed_workers + 16) {
        WARN("the hard RLIMIT_NOFILE (" << kept.hard() << ") leaves no room to raise the soft one: not tested");
        return;
    }
    const rlimit low{soft, kept.hard()};
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
    auto o = scripted(start_mode::fork, behaviour::wait_for_disconnect);
    o.silent = true;  // the worker's stdout and stderr are the primary's to read: two more each
    with_primary(o, [&](primary<proto>& p) -> task<void> {
        rlimit now{};
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
        CHECK(now.rlim_cur == kept.hard());
        for (int i = 0; i < relayed_workers; ++i) (void)co_await fork_worker(p);
        for (int i = 0; i < relayed_workers; ++i) (void)co_await bounded(p.next<online_event>());
        CHECK(support::open_fd_count() >= before + 4 * relayed_workers);
    });
}

TEST_CASE("out of descriptors, fork() says RLIMIT_NOFILE and what each worker takes") {
    // In a child of the test's: the hard limit, once lowered, cannot be raised again.
    auto [mine, theirs] = support::make_socketpair();
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        mine.reset();
        const rlim_t tight = support::open_fd_count() + 24;
        const rlimit both{tight, tight};
        std::string what = "setrlimit failed";
        if (::setrlimit(RLIMIT_NOFILE, &both) == 0) {
            io_context ctx;
            primary<proto> p(scripted(start_mode::fork, behaviour::wait_for_disconnect), support::worker_main);
            what = sync_wait(first_refusal(p));
        }
        const bool told = ::write(theirs.get(), what.data(), what.size()) == static_cast<ssize_t>(what.size());
        ::_exit(told ? 0 : 1);
    }
    theirs.reset();
    const std::string what = read_to_end(mine.get());
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK_THAT(what, Contains("cannot start worker") && Contains("RLIMIT_NOFILE") && Contains("2 to 4"));
}
