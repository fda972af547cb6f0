// job_queue: the primary hands typed jobs to its workers through a job_pool, which keeps each
// worker busy and sends again the jobs of a worker that died before answering.
// --chaos SIGKILLs a random worker every 5 ms: every job must still be done once.
//   ./job_queue [--help] [--workers 4] [--jobs 2000] [--chaos]  → "2000 jobs done, 0 lost, 0 duplicated"
// Exit code: run()'s when it is not 0; else 0 if every job was done exactly once, 2 if not.
#include <cluster/cluster.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
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
using pool_type = job_pool<proto, job, job_done>;

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
        (void)co_await w.reply(*j, d);
    }
}

// Submits every job, then counts the answers by the job id they carry: a duplicate or a lost
// job would show. Results do not count toward max_queued: submitting first cannot deadlock.
task<void> run_jobs(pool_type& pool, std::uint64_t jobs, std::vector<unsigned>& answers) {
    for (std::uint64_t id = 0; id < jobs; ++id) {
        const job j{id, 1'000'000 + 97 * id};
        (void)co_await pool.submit(j);
    }
    pool.close();
    while (auto d = co_await pool.next())
        if (d->value) ++answers.at(d->value->id);
}

// With chaos, kills a random worker every 5 ms and counts its death; the restart policy replaces it.
task<void> chaos(primary<proto>& p, bool enabled, unsigned& died) {
    for (;;) {
        auto slept = co_await io::sleep_for(5ms);
        if (!slept) co_return;
        auto alive = p.workers();
        if (!enabled || alive.empty() || !alive[std::rand() % alive.size()]->kill(SIGKILL)) continue;
        (void)co_await p.next<exit_event>();
        ++died;
    }
}

task<void> primary_main(primary<proto>& p, unsigned workers, unsigned jobs, bool with_chaos, bool& ok) {
    co_await p.scale(workers);
    pool_type pool(p, {.max_attempts = 0});  // under chaos a job may lose any number of workers
    std::vector<unsigned> answers(jobs);
    unsigned died = 0;
    (void)co_await when_any(run_jobs(pool, jobs, answers), chaos(p, with_chaos, died));
    const auto lost = std::count(answers.begin(), answers.end(), 0u);
    const auto duplicated = std::count_if(answers.begin(), answers.end(), [](unsigned n) { return n > 1; });
    std::printf("%u workers died and were replaced, %llu jobs re-sent\n%td jobs done, %td lost, %td duplicated\n", died,
                static_cast<unsigned long long>(pool.resent()), std::ptrdiff_t{jobs} - lost, lost, duplicated);
    ok = lost == 0 && duplicated == 0;
    co_await p.shutdown();  // else the workers outlive primary_main, supervised until a stop signal
}

unsigned option(int argc, char** argv, std::string_view flag, unsigned fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return static_cast<unsigned>(std::strtoul(argv[i + 1], nullptr, 10));
    return fallback;
}

bool asks_for_help(int argc, char** argv) {
    return std::any_of(argv + 1, argv + argc, [](std::string_view a) { return a == "--help" || a == "-h"; });
}

int main(int argc, char** argv) {
    if (asks_for_help(argc, argv)) {
        std::printf("usage: %s [--workers N] [--jobs M] [--chaos]\n"
                    "  The primary hands M typed jobs (default 2000) to N workers (default 4) through a job_pool,\n"
                    "  which re-sends those of a worker that died. --chaos SIGKILLs a worker every 5 ms.\n"
                    "  Prints \"M jobs done, 0 lost, 0 duplicated\" and exits 0 when each was done once.\n",
                    argv[0]);
        return 0;
    }
    const unsigned workers = option(argc, argv, "--workers", 4), jobs = option(argc, argv, "--jobs", 2000);
    const bool with_chaos = std::find(argv + 1, argv + argc, std::string_view("--chaos")) != argv + argc;
    // Chaos kills on purpose: replace at once, and a kill soon after a start is no crash loop
    // (min_uptime 0); give up past twice what chaos causes.
    primary_options options;
    if (with_chaos)
        options.restart = {.initial_delay = 1ms, .factor = 1.0, .max_restarts = 400, .period = 1s, .min_uptime = 0ms};
    bool ok = false;
    const int code = run<proto>(
        argc, argv, [&](primary<proto>& p) { return primary_main(p, workers, jobs, with_chaos, ok); }, worker_main,
        options);
    return code != exit_code::ok ? code : ok ? 0 : 2;
}
