// job_queue: the primary hands typed jobs to its workers as requests, a few in flight per
// worker, and re-sends the jobs of a worker that died before answering. The restart policy
// replaces the dead; each worker, first or replacement, is fed from its fork event on.
// --chaos SIGKILLs a random worker every few milliseconds: every job must still be done
// once. Prints "M jobs done, 0 lost, 0 duplicated" when they were.
//   ./job_queue [--help] [--workers 4] [--jobs 2000] [--chaos]
// Exit code: run()'s when it is not 0 (1: the primary's code threw, 3: the restart policy
// gave up); otherwise 0 if every job was done exactly once, and 2 if not.
#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string_view>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;

struct job {
    std::uint64_t id = 0, n = 0;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, n))
struct job_done {
    std::uint64_t id = 0, steps = 0;
};
BOOST_DESCRIBE_STRUCT(job_done, (), (id, steps))
using proto = protocol<job, job_done>;

constexpr unsigned in_flight_per_worker = 4;
constexpr auto job_timeout = 5s;  // then the job goes to another worker; a late answer is dropped
constexpr auto chaos_period = 5ms;
constexpr auto give_up_after = 60s;  // jobs still unanswered then are lost

// Answers are recorded under the job id they carry, so a job answered twice shows up as a
// duplicate. A job whose worker died unanswered is re-sent: it may have run already, but
// only an answer that arrived counts.
struct board {
    mailbox<job> queue;
    std::vector<unsigned> answers;  // by job id
    std::size_t done = 0;
    unsigned resent = 0, replaced = 0;
    latch all_done;

    void record(const job_done& d) {
        if (++answers.at(d.id) == 1 && ++done == answers.size()) all_done.set();
    }
};

// The work: the Collatz steps of 2000 numbers from n, summed.
std::uint64_t collatz_steps(std::uint64_t n) {
    std::uint64_t steps = 0;
    for (std::uint64_t start = n; start < n + 2000; ++start)
        for (std::uint64_t x = start; x != 1; ++steps) x = x % 2 ? 3 * x + 1 : x / 2;
    return steps;
}

task<void> worker_main(worker<proto>& w) {
    while (auto j = co_await w.receive<job>()) {
        const job_done d{j->value.id, collatz_steps(j->value.n)};
        auto sent = co_await w.reply(*j, d);
        if (!sent) co_return;
    }
}

// One of a worker's request slots; it ends with its worker. The handle is looked up for
// each job: it is gone once feed_workers() has taken the worker's exit event.
task<void> feed(primary<proto>& p, board& b, unsigned worker_id) {
    while (auto j = co_await b.queue.take()) {
        auto* h = p.worker(worker_id);
        if (!h || !h->is_connected()) {
            b.queue.push(*j);  // never sent: it goes to another worker's slot
            co_return;
        }
        auto answer = co_await h->request<job_done>(*j, job_timeout);
        if (!answer) {  // peer_gone: the worker died first; or it is stuck (timed_out)
            ++b.resent;
            b.queue.push(*j);
            co_return;
        }
        b.record(*answer);
    }
}

// Every worker gets its request slots when its fork event comes: the first ones, and the
// replacements the restart policy starts. Taking every event also lets the primary forget
// each dead worker as soon as its exit event is taken.
task<void> feed_workers(primary<proto>& p, board& b, scope& feeders, unsigned first_workers) {
    unsigned forked = 0;
    for (;;) {
        auto e = co_await p.next_event();
        const auto* f = e.get_if<fork_event>();
        if (!f) continue;
        if (++forked > first_workers) ++b.replaced;
        for (unsigned i = 0; i < in_flight_per_worker; ++i) feeders.spawn(feed(p, b, f->worker_id));
    }
}

task<void> chaos(primary<proto>& p, const board& b) {
    std::mt19937 rng(std::random_device{}());
    while (!b.queue.closed()) {
        auto slept = co_await io::sleep_for(chaos_period);
        if (!slept) co_return;
        auto alive = p.workers();
        if (!alive.empty()) (void)alive[rng() % alive.size()]->kill(SIGKILL);
    }
}

task<void> until_done(board& b) { (void)co_await b.all_done.wait(); }

task<void> primary_main(primary<proto>& p, unsigned workers, unsigned jobs, bool with_chaos, bool& ok) {
    board b;
    b.answers.resize(jobs);
    for (std::uint64_t id = 0; id < jobs; ++id) b.queue.push(job{id, 1'000'000 + 97 * id});
    if (jobs == 0) b.all_done.set();
    scope tasks;
    co_await p.scale(workers);
    if (with_chaos) tasks.spawn(chaos(p, b));
    (void)co_await when_any(feed_workers(p, b, tasks, workers), with_timeout(until_done(b), give_up_after));
    b.queue.close();
    co_await tasks.join();  // the requests still in flight end too: an answer that late still counts
    // The workers outlive primary_main: run() would go on supervising them until a stop signal.
    co_await p.shutdown();
    const auto lost = std::count(b.answers.begin(), b.answers.end(), 0u);
    const auto duplicated = std::count_if(b.answers.begin(), b.answers.end(), [](unsigned n) { return n > 1; });
    std::printf("%u workers died and were replaced, %u jobs re-sent\n", b.replaced, b.resent);
    std::printf("%zu jobs done, %td lost, %td duplicated\n", b.done, lost, duplicated);
    ok = b.done == jobs && lost == 0 && duplicated == 0;
}

// --chaos kills a worker every chaos_period on purpose. Those deaths are not a crash loop
// that backing off would calm, and the run must not stop on them: replace at once, without
// a growing delay, and allow twice the restarts chaos can cause, so that only something
// else dying as well makes the policy give up.
restart_policy tolerating_chaos() {
    restart_policy r;
    r.initial_delay = 1ms;
    r.factor = 1.0;
    r.period = 1s;
    r.max_restarts = 2 * static_cast<unsigned>(r.period / chaos_period);
    return r;
}

// The number after `flag` on the command line, or `fallback`.
unsigned option(int argc, char** argv, std::string_view flag, unsigned fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
    return fallback;
}

bool asks_for_help(int argc, char** argv) {
    return std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; });
}

void print_usage(const char* program) {
    std::printf("usage: %s [--workers N] [--jobs M] [--chaos]\n"
                "  The primary hands M typed jobs (default 2000) to N workers (default 4) as requests,\n"
                "  and re-sends those of a worker that died. --chaos SIGKILLs a worker every 5 ms.\n"
                "  Prints \"M jobs done, 0 lost, 0 duplicated\" and exits 0 when each was done once.\n",
                program);
}

int main(int argc, char** argv) {
    if (asks_for_help(argc, argv)) {
        print_usage(argv[0]);
        return 0;
    }
    const unsigned workers = option(argc, argv, "--workers", 4), jobs = option(argc, argv, "--jobs", 2000);
    const bool with_chaos = std::find(argv + 1, argv + argc, std::string_view("--chaos")) != argv + argc;
    primary_options options;
    if (with_chaos) options.restart = tolerating_chaos();
    bool ok = false;
    const int code = run<proto>(
        argc, argv, [&](primary<proto>& p) { return primary_main(p, workers, jobs, with_chaos, ok); }, worker_main,
        options);
    if (code != exit_code::ok) return code;  // ok is false then: primary_main did not finish
    return ok ? 0 : 2;
}
