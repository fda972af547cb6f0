// run(): what a program gets back when its process cannot take its role for want of io_uring,
// in the primary and in its workers, forked or exec'd: a message and an exit code, not a crash.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "support/descriptors.hpp"
#include "support/no_io_uring.hpp"
#include "support/primary.hpp"
#include "support/scripted_worker.hpp"
#include "support/waiting.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

using namespace cluster;
using support::bounded;
using support::proto;

namespace {

constexpr std::string_view why = "cluster: cannot set up io_uring: permission denied";

// How a forked child of the test ended, and what it wrote on stderr.
struct run_outcome {
    std::optional<exit_status> status;
    std::string err;
};

// Runs body() in a forked child, its stderr a file, and exits with what body returns.
template <class Body>
run_outcome in_child(Body body) {
    const unique_fd err(::memfd_create("stderr", MFD_CLOEXEC));
    REQUIRE(err);
    std::fflush(nullptr);
    auto child = child_process::fork();
    REQUIRE(child.has_value());
    if (child->is_child()) {
        int code = 90;
        try {
            if (::dup2(err.get(), STDERR_FILENO) >= 0) code = body();
        } catch (...) {
            code = 91;
        }
        std::fflush(nullptr);
        ::_exit(code);
    }
    io_context ctx;
    auto status = sync_wait(bounded(child->wait()));
    return {status ? std::optional(*status) : std::nullopt, support::read_all(err.get())};
}

std::size_t occurrences(std::string_view text, std::string_view part) {
    std::size_t n = 0;
    for (auto at = text.find(part); at != std::string_view::npos; at = text.find(part, at + part.size())) ++n;
    return n;
}

task<void> says_it_ran(primary<proto>&) {
    std::fputs("primary_main ran\n", stderr);
    co_return;
}

int run_without_io_uring() {
    if (!support::deny_io_uring_setup()) return 92;
    char name[] = "test_run";
    char* argv[] = {name, nullptr};
    return run<proto>(1, argv, says_it_ran, support::worker_main);
}

task<int> first_exit_code(primary<proto>& p) {
    (void)co_await support::fork_worker(p);
    auto e = co_await bounded(p.next<exit_event>());
    co_await bounded(p.shutdown());
    co_return e.status.exited() ? e.status.code : 128 + e.status.signal;
}

// A primary that has its ring, of workers that cannot set up theirs: how its first worker exits.
int workers_without_io_uring(start_mode mode) {
    io_context ctx;
    if (!support::deny_io_uring_setup()) return 92;
    auto o = support::scripted(mode, support::behaviour::hello_then_return);
    o.restart.mode = restart_mode::temporary;
    primary<proto> p(std::move(o), support::worker_main);
    return sync_wait(first_exit_code(p));
}

}  // namespace

TEST_CASE("without io_uring the primary's run() says why, once, and returns io_uring_unavailable") {
    const auto got = in_child(run_without_io_uring);
    REQUIRE(got.status);
    CHECK(got.status->to_string() == exit_status{exit_code::io_uring_unavailable}.to_string());
    CHECK(occurrences(got.err, why) == 1);
    CHECK(occurrences(got.err, "primary_main ran") == 0);
}

TEST_CASE("a worker without io_uring says why, once, and exits with io_uring_unavailable, forked or exec'd") {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::exec);
    INFO((mode == start_mode::fork ? "fork" : "exec"));
    const auto got = in_child([mode] { return workers_without_io_uring(mode); });
    REQUIRE(got.status);
    CHECK(got.status->to_string() == exit_status{exit_code::io_uring_unavailable}.to_string());
    CHECK(occurrences(got.err, why) == 1);
}
