// job_pool with real processes: every job's result once, in submission order or as completed;
// submit() waiting while the queue is full; a worker killed holding jobs, a worker too slow to
// answer in time, a job that kills every worker it reaches; in_flight 0 pacing long and short
// jobs; scaling up and down; close(); a stop; options refused.
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include "support/primary.hpp"
#include "support/waiting.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::bounded;
using support::joined;

namespace pool_test {

struct work {
    std::uint64_t id = 0;
    std::uint32_t hold_ms = 0;  // the worker takes this long over it
    bool poison = false;        // the worker dies of it
};
BOOST_DESCRIBE_STRUCT(work, (), (id, hold_ms, poison))

struct job_answer {
    std::uint64_t id = 0;
    std::uint32_t worker_id = 0;
};
BOOST_DESCRIBE_STRUCT(job_answer, (), (id, worker_id))

// Worker to primary: it took job `id` and will not answer it.
struct holding {
    std::uint32_t worker_id = 0;
    std::uint64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(holding, (), (worker_id, id))

// Worker to primary: it answered job `id`, after the primary had stopped waiting for it.
struct answered_late {
    std::uint64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(answered_late, (), (id))

// Primary to the slow worker: answer the oldest job you hold.
struct release {};
BOOST_DESCRIBE_STRUCT(release, (), ())

}  // namespace pool_test

using namespace pool_test;
using pool_proto = protocol<work, job_answer, holding, answered_late, release>;
using pool_type = job_pool<pool_proto, work, job_answer>;
using done = pool_type::done;

namespace {

// ---- the workers (in the child: no Catch assertions) ----

bool is_first(const worker<pool_proto>& w) { return w.id() == 1; }

// Holds a job for its hold_ms (less if the worker is asked to leave), dies of a poison one.
task<bool> do_work(worker<pool_proto>& w, const work& j) {
    if (j.poison) ::_exit(1);
    if (j.hold_ms > 0)
        (void)co_await io::sleep_for(std::chrono::milliseconds(j.hold_ms)).with_stop_token(w.stop_token());
    co_return !w.stopping();
}

task<void> reply_to(worker<pool_proto>& w, const incoming<work>& j) {
    const job_answer a{j.value.id, w.id()};
    (void)co_await w.reply(j, a);
}

task<void> answer_all(worker<pool_proto>& w) {
    while (auto j = co_await w.receive<work>()) {
        (void)co_await do_work(w, j->value);
        co_await reply_to(w, *j);
    }
}

// The first worker takes jobs and never answers them; the others answer.
task<void> first_holds(worker<pool_proto>& w) {
    if (!is_first(w)) co_return co_await answer_all(w);
    while (auto j = co_await w.receive<work>()) {
        const holding h{w.id(), j->value.id};
        (void)co_await w.send(h);
    }
}

// The first worker answers each job only once the primary releases it, and says so; the
// others answer at once. So its answers come after any timeout, however loaded the machine.
task<void> first_is_slow(worker<pool_proto>& w) {
    if (!is_first(w)) co_return co_await answer_all(w);
    while (auto j = co_await w.receive<work>()) {
        auto released = co_await w.receive<release>();
        if (!released) co_return;
        co_await reply_to(w, *j);
        const answered_late late{j->value.id};
        (void)co_await w.send(late);
    }
}

// ---- the primary ----

// Lets the slow worker answer `n` more of the jobs it holds.
task<void> release_slow_worker(primary<pool_proto>& p, int n) {
    const release go;
    for (int i = 0; i < n; ++i) {
        auto sent = co_await p.worker(1)->send(go);
        REQUIRE(sent.has_value());
    }
}

template <class Body>
void with_pool_workers(primary<pool_proto>::worker_main main, Body&& body) {
    primary_options o;
    o.restart.initial_delay = 1ms;
    o.restart.jitter = 0;
    support::with_primary<pool_proto>(std::move(o), std::move(main), std::forward<Body>(body));
}

job_pool_options pool_options(unsigned in_flight, job_order order = job_order::submission) {
    job_pool_options o;
    o.in_flight = in_flight;
    o.order = order;
    return o;
}

// Submits jobs [from, from + n), each held hold_ms by its worker.
task<void> submit_range(pool_type& pool, std::uint64_t from, std::uint64_t n, std::uint32_t hold_ms = 0) {
    for (std::uint64_t id = from; id < from + n; ++id) {
        const work j{id, hold_ms, false};
        auto number = co_await pool.submit(j);
        if (!number) FAIL("submit: " << number.error().message());
        CHECK(*number == id);
    }
}

// Scales to n workers and waits until each is ready: a pool made then feeds them all from its first job.
task<void> scale_ready(primary<pool_proto>& p, std::size_t n) {
    co_await bounded(p.scale(n));
    for (unsigned slot : p.slots()) {
        auto h = co_await bounded(p.worker_in_slot(slot));
        REQUIRE(h.has_value());
    }
}

task<std::vector<done>> take(pool_type& pool, std::size_t n) {
    std::vector<done> out;
    while (out.size() < n) {
        auto d = co_await pool.next();
        if (!d) FAIL("next() ended after " << out.size() << " results of " << n);
        out.push_back(std::move(*d));
    }
    co_return out;
}

// Takes n results; the most jobs in flight meanwhile.
task<std::size_t> most_in_flight(pool_type& pool, std::size_t n) {
    std::size_t most = 0;
    for (std::size_t i = 0; i < n; ++i) {
        auto d = co_await pool.next();
        if (!d) FAIL("next() ended after " << i << " results of " << n);
        most = std::max(most, pool.in_flight());
    }
    co_return most;
}

task<std::vector<done>> drain(pool_type& pool) {
    std::vector<done> out;
    while (auto d = co_await pool.next()) out.push_back(std::move(*d));
    co_return out;
}

// Each of jobs [0, n) answered once, by its own answer.
void check_each_once(const std::vector<done>& results, std::uint64_t n) {
    REQUIRE(results.size() == n);
    std::set<std::uint64_t> seen;
    for (const auto& d : results) {
        INFO("job " << d.job);
        REQUIRE(d.value.has_value());
        CHECK(d.value->id == d.job);
        CHECK(seen.insert(d.job).second);
    }
    CHECK(seen.size() == n);
}

std::set<unsigned> workers_of(const std::vector<done>& results) {
    std::set<unsigned> out;
    for (const auto& d : results)
        if (d.value) out.insert(d.value->worker_id);
    return out;
}

}  // namespace

TEST_CASE("every job's result comes back once: in submission order, or as completed") {
    const auto order = GENERATE(job_order::submission, job_order::completion);
    INFO((order == job_order::submission ? "submission order" : "completion order"));
    with_pool_workers(answer_all, [order](primary<pool_proto>& p) -> task<void> {
        co_await scale_ready(p, 2);
        job_pool_options o;
        o.order = order;
        pool_type pool(p, o);
        constexpr std::uint64_t jobs = 2000;
        scope producing;
        producing.spawn(submit_range(pool, 0, jobs));
        const auto results = co_await bounded(take(pool, jobs));
        co_await bounded(joined(producing));
        check_each_once(results, jobs);
        if (order == job_order::submission)
            for (std::uint64_t i = 0; i < jobs; ++i) CHECK(results[i].job == i);
        CHECK(workers_of(results) == std::set<unsigned>{1, 2});
        CHECK(pool.resent() == 0);
        CHECK(pool.outstanding() == 0);
    });
}

TEST_CASE("with in_flight 0, a worker holds one long job at a time, and many short ones") {
    with_pool_workers(answer_all, [](primary<pool_proto>& p) -> task<void> {
        co_await scale_ready(p, 2);
        pool_type pool(p, job_pool_options{});
        co_await submit_range(pool, 0, 6, 100);
        auto long_jobs = co_await bounded(take(pool, 6));
        check_each_once(long_jobs, 6);
        std::map<unsigned, int> per_worker;
        for (const auto& d : long_jobs) ++per_worker[d.value->worker_id];
        CHECK(per_worker[1] >= 2);  // all 6 to the first worker, had it taken all it could
        CHECK(per_worker[2] >= 2);

        scope producing;
        producing.spawn(submit_range(pool, 6, 2000));
        const auto most = co_await bounded(most_in_flight(pool, 2000));
        co_await bounded(joined(producing));
        CHECK(most > 2);
    });
}

TEST_CASE("submit() waits while max_queued jobs wait for a worker, and goes on once one takes them") {
    with_pool_workers(answer_all, [](primary<pool_proto>& p) -> task<void> {
        auto o = pool_options(1);
        o.max_queued = 4;
        pool_type pool(p, o);  // no worker yet: every job waits
        scope producing;
        producing.spawn(submit_range(pool, 0, 6));
        CHECK(pool.queued() == 4);
        CHECK(pool.outstanding() == 4);  // the fifth waits in submit()

        co_await bounded(p.scale(1));
        const auto results = co_await bounded(take(pool, 6));
        co_await bounded(joined(producing));
        check_each_once(results, 6);
    });
}

TEST_CASE("a worker killed holding jobs: they go to other workers, and each result comes back once") {
    with_pool_workers(first_holds, [](primary<pool_proto>& p) -> task<void> {
        co_await scale_ready(p, 2);
        pool_type pool(p, pool_options(3, job_order::completion));
        co_await submit_range(pool, 0, 30);
        for (int held = 0; held < 3; ++held) {
            auto m = co_await bounded(p.next_message<holding>());
            CHECK(m.value.worker_id == 1);
        }
        REQUIRE(p.worker(1)->kill(SIGKILL).has_value());
        pool.close();
        const auto results = co_await bounded(drain(pool));
        check_each_once(results, 30);
        CHECK_FALSE(workers_of(results).contains(1));
        CHECK(pool.resent() >= 3);
    });
}

TEST_CASE("an attempt that times out goes to a worker again, and the late answer is dropped") {
    with_pool_workers(first_is_slow, [](primary<pool_proto>& p) -> task<void> {
        co_await scale_ready(p, 2);
        auto o = pool_options(1, job_order::completion);
        o.timeout = 100ms;
        o.max_attempts = 0;
        pool_type pool(p, o);
        co_await submit_range(pool, 0, 10);
        const auto results = co_await bounded(take(pool, 10));
        check_each_once(results, 10);
        CHECK(workers_of(results) == std::set<unsigned>{2});
        CHECK(pool.resent() >= 1);

        // The slow worker's answer reaches the primary, after the job's result was handed back.
        co_await release_slow_worker(p, 1);
        auto late = co_await bounded(p.next_message<answered_late>());
        CHECK(late.value.id < 10);
        pool.close();
        const auto more = co_await bounded(drain(pool));
        CHECK(more.empty());
    });
}

TEST_CASE("a job whose every attempt times out fails with timed_out, with a timeout of 0 an attempt waits as long "
          "as its worker lives") {
    with_pool_workers(first_is_slow, [](primary<pool_proto>& p) -> task<void> {
        co_await scale_ready(p, 1);  // the slow one only
        auto o = pool_options(1);
        o.timeout = 50ms;
        o.max_attempts = 2;
        auto impatient = std::make_unique<pool_type>(p, o);
        co_await submit_range(*impatient, 0, 1);
        impatient->close();
        const auto failed = co_await bounded(drain(*impatient));
        REQUIRE(failed.size() == 1);
        CHECK(failed[0].value.error() == std::errc::timed_out);
        CHECK(impatient->resent() == 1);
        impatient.reset();

        o.timeout = 0ms;
        pool_type patient(p, o);
        co_await submit_range(patient, 0, 2);
        // It holds the impatient pool's two attempts first, then these two.
        co_await release_slow_worker(p, 4);
        patient.close();
        const auto results = co_await bounded(drain(patient));
        check_each_once(results, 2);
        CHECK(workers_of(results) == std::set<unsigned>{1});
        CHECK(patient.resent() == 0);
    });
}

TEST_CASE("a job that kills every worker it reaches fails after max_attempts with the last error, the rest are "
          "done") {
    with_pool_workers(answer_all, [](primary<pool_proto>& p) -> task<void> {
        co_await bounded(p.scale(2));
        auto o = pool_options(2, job_order::completion);
        o.max_attempts = 2;
        pool_type pool(p, o);
        co_await submit_range(pool, 0, 10);
        const work poison{10, 0, true};
        auto number = co_await pool.submit(poison);
        REQUIRE(number.has_value());
        co_await submit_range(pool, 11, 10);
        pool.close();
        auto results = co_await bounded(drain(pool));
        REQUIRE(results.size() == 21);
        std::vector<done> answered;
        for (auto& d : results) {
            if (d.job == 10) {
                CHECK(d.value.error() == errc::peer_gone);
            } else {
                answered.push_back(std::move(d));
            }
        }
        CHECK(answered.size() == 20);
        CHECK(pool.resent() >= 1);
    });
}

TEST_CASE("scaling: jobs wait while no worker serves, new slots get fed, and a slot given up mid-job hands its "
          "jobs on") {
    with_pool_workers(answer_all, [](primary<pool_proto>& p) -> task<void> {
        pool_type pool(p, pool_options(2, job_order::completion));
        co_await submit_range(pool, 0, 40, 5);
        CHECK(pool.queued() == 40);

        co_await bounded(p.scale(2));
        auto results = co_await bounded(take(pool, 40));
        CHECK(workers_of(results) == std::set<unsigned>{1, 2});

        co_await submit_range(pool, 40, 20, 5);
        co_await bounded(p.scale(1));  // retires worker 1 with jobs in flight
        CHECK(p.slots() == std::vector<unsigned>{2});
        co_await submit_range(pool, 60, 20, 0);
        pool.close();
        auto rest = co_await bounded(drain(pool));
        for (const auto& d : rest) {
            INFO("job " << d.job);
            REQUIRE(d.value.has_value());
            if (d.job >= 60) CHECK(d.value->worker_id == 2);
        }
        results.insert(results.end(), rest.begin(), rest.end());
        check_each_once(results, 80);
    });
}

TEST_CASE("close(): submit() fails with pool_closed, and next() ends once the jobs submitted are done") {
    with_pool_workers(answer_all, [](primary<pool_proto>& p) -> task<void> {
        co_await bounded(p.scale(1));
        pool_type pool(p, pool_options(2));
        co_await submit_range(pool, 0, 5, 1);
        pool.close();
        const work late{5, 0, false};
        auto refused = co_await pool.submit(late);
        CHECK(refused.error() == errc::pool_closed);
        const auto results = co_await bounded(drain(pool));
        check_each_once(results, 5);
        auto after = co_await pool.next();
        CHECK_FALSE(after.has_value());
    });
}

TEST_CASE("a stop: jobs waiting for a worker fail with cluster_stopping, and so does submit()") {
    with_pool_workers(answer_all, [](primary<pool_proto>& p) -> task<void> {
        pool_type pool(p, pool_options(2));
        co_await submit_range(pool, 0, 3);
        co_await bounded(p.shutdown());
        const work late{3, 0, false};
        auto refused = co_await pool.submit(late);
        CHECK(refused.error() == errc::cluster_stopping);
        pool.close();
        const auto results = co_await bounded(drain(pool));
        REQUIRE(results.size() == 3);
        for (std::uint64_t i = 0; i < 3; ++i) {
            CHECK(results[i].job == i);
            CHECK(results[i].value.error() == errc::cluster_stopping);
        }
    });
}

TEST_CASE("a job_pool with a max_queued of 0 is refused") {
    with_pool_workers(answer_all, [](primary<pool_proto>& p) -> task<void> {
        auto o = pool_options(1);
        o.max_queued = 0;
        CHECK_THROWS_AS(pool_type(p, o), std::invalid_argument);
        co_return;
    });
}
