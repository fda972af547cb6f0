// support: a primary for a test to drive, on a loop of its own, stopped at the end — of
// scripted workers, or of the test's own — and the check that nothing outlived it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include "descriptors.hpp"
#include "forked_faults.hpp"
#include "scripted_worker.hpp"
#include "waiting.hpp"

namespace support {

// A whole test's body: its waits are bounded too; this is for one that is not.
inline constexpr std::chrono::milliseconds body_limit = 60s;

// Runs body(p) against a primary on a fresh loop, shuts it down, and checks that no
// descriptor and no child outlives it, and that no forked worker died of a fault.
template <class P, class Body>
void with_primary(cluster::primary_options o, typename cluster::primary<P>::worker_main main, Body&& body) {
    const std::size_t fds = open_fd_count();
    const forked_fault_watch faults;
    auto watched = [main = std::move(main)](cluster::worker<P>& w) {
        count_faults_in_worker();
        return main(w);
    };
    {
        cluster::io_context ctx;
        cluster::primary<P> p(std::move(o), std::move(watched));
        cluster::sync_wait(bounded(body(p), body_limit));
        cluster::sync_wait(bounded(p.shutdown()));
    }
    CHECK(open_fd_count() == fds);
    CHECK(no_children());
    INFO("the last fault: signal " << faults.last_signal());
    CHECK(faults.count() == 0);
}

// Options for scripted workers running `behaviour`, started in `mode`: in exec mode they run
// the scripted_worker program.
inline cluster::primary_options scripted(cluster::start_mode mode, const char* behaviour) {
    cluster::primary_options o;
    o.mode = mode;
    if (mode == cluster::start_mode::exec) {
        o.exec = program;
        o.args = std::vector<std::string>{};
    }
    o.env[behaviour_env] = behaviour;
    return o;
}

// with_primary(), for a primary of scripted workers.
template <class Body>
void with_primary(cluster::primary_options o, Body&& body) {
    with_primary<proto>(std::move(o), worker_main, std::forward<Body>(body));
}

inline const cluster::fork_options as_configured{};

// fork(), bounded; the options are taken by reference so no temporary sits in a co_await.
template <class P>
cluster::task<cluster::worker_handle<P>&> fork_worker(cluster::primary<P>& p,
                                                      const cluster::fork_options& o = as_configured) {
    auto h = co_await bounded(p.try_fork(o));
    if (!h) FAIL("fork failed: " << h.error().message());
    co_return **h;
}

// Scripted worker id, waiting for its go (behaviour::ready_on_go), is told to call ready().
inline cluster::task<void> send_go(cluster::primary<proto>& p, unsigned id) {
    auto* h = p.worker(id);
    REQUIRE(h);
    const go g{id};
    auto sent = co_await h->send(g);
    REQUIRE(sent.has_value());
}

// What scripted worker h answers to work `id`, within wait_limit.
inline cluster::task<cluster::result<work_done>> ask(cluster::worker_handle<proto>& h, std::uint64_t id) {
    const work j{id};
    co_return co_await h.request<work_done>(j, wait_limit);
}

}  // namespace support
