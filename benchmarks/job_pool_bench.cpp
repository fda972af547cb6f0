// job_pool_bench: 100,000 jobs of about 10 µs of real CPU work each, done by 2 worker
// processes through a job_pool, beside a pool of 2 std::threads doing the same jobs in the
// same run. Rounds alternate between the two; each figure is the median round. The CPU time
// both sides used is reported too: on a shared machine it moves less than the wall clock.
//   job_pool_bench [--rounds N] [--jobs N] [--in-flight N]
#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cpu_time.hpp"
#include "report.hpp"

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace bench_types {

struct job {
    std::uint64_t id = 0;
    std::uint64_t seed = 0;
    std::uint32_t rounds = 0;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, seed, rounds))

struct job_done {
    std::uint64_t id = 0;
    std::uint64_t value = 0;
};
BOOST_DESCRIBE_STRUCT(job_done, (), (id, value))

}  // namespace bench_types

using namespace bench_types;
using proto = protocol<job, job_done>;

namespace {

constexpr unsigned workers = 2;
constexpr auto job_cost = std::chrono::microseconds(10);

// The work: `rounds` steps of a xorshift generator, which nothing can skip.
std::uint64_t work(std::uint64_t seed, std::uint32_t rounds) {
    std::uint64_t x = seed | 1;
    for (std::uint32_t i = 0; i < rounds; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// The rounds of work() that take job_cost on this machine: the fastest of a few probes,
// which other processes on a shared machine slowed the least.
std::uint32_t calibrate() {
    constexpr std::uint32_t probe = 2'000'000;
    volatile std::uint64_t sink = 0;
    double fastest = 1e9;
    for (int i = 0; i < 10; ++i) {
        const auto start = clock_type::now();
        sink = work(sink + 1, probe);
        fastest = std::min(fastest, seconds_since(start));
    }
    return static_cast<std::uint32_t>(std::chrono::duration<double>(job_cost).count() / (fastest / probe));
}

// ---- the baseline: a thread pool as one writes it by hand ----

class thread_pool {
public:
    explicit thread_pool(unsigned n) {
        for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { serve(); });
    }
    ~thread_pool() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        ready_.notify_all();
        for (auto& t : threads_) t.join();
    }
    void submit(std::function<void()> f) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(f));
        }
        ready_.notify_one();
    }

private:
    void serve() {
        for (;;) {
            std::unique_lock lock(mutex_);
            ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            auto f = std::move(queue_.front());
            queue_.pop_front();
            lock.unlock();
            f();
        }
    }

    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

// What one round took: wall-clock seconds from the first job submitted to the last result
// in, and the CPU seconds every process and thread of its side used meanwhile.
struct timing {
    double wall = 0, cpu = 0;
};

// Another process's CPU time so far, in seconds (/proc/<pid>/stat: utime and stime).
double cpu_of(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    std::getline(stat, line);
    std::istringstream after_name(line.substr(line.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && after_name >> field; ++i)
        if (i >= 14) ticks += std::stod(field);
    return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

timing run_threads(std::uint64_t jobs, std::uint32_t rounds) {
    std::vector<std::uint64_t> results(jobs);
    std::mutex mutex;
    std::condition_variable all_done;
    std::uint64_t done = 0;
    const double cpu_before = bench::own_cpu_seconds();
    const auto start = clock_type::now();
    {
        thread_pool pool(workers);
        for (std::uint64_t id = 0; id < jobs; ++id)
            pool.submit([&, id] {
                results[id] = work(id, rounds);
                std::lock_guard lock(mutex);
                if (++done == jobs) all_done.notify_one();
            });
        std::unique_lock lock(mutex);
        all_done.wait(lock, [&] { return done == jobs; });
    }
    return {seconds_since(start), bench::own_cpu_seconds() - cpu_before};
}

// ---- the cluster: 2 worker processes fed by a job_pool ----

task<void> worker_main(worker<proto>& w) {
    while (auto j = co_await w.receive<job>()) {
        const job_done d{j->value.id, work(j->value.seed, j->value.rounds)};
        (void)co_await w.reply(*j, d);
    }
}

task<void> submit_all(job_pool<proto, job, job_done>& pool, std::uint64_t jobs, std::uint32_t rounds) {
    for (std::uint64_t id = 0; id < jobs; ++id) {
        const job j{id, id, rounds};
        (void)co_await pool.submit(j);
    }
    pool.close();
}

task<std::uint64_t> collect(job_pool<proto, job, job_done>& pool) {
    std::uint64_t answered = 0;
    while (auto d = co_await pool.next())
        if (d->value) ++answered;
    co_return answered;
}

// The CPU time of the primary and its workers, in seconds.
double cluster_cpu(const primary<proto>& p) {
    double cpu = bench::own_cpu_seconds();
    for (const auto* h : p.workers()) cpu += cpu_of(h->pid());
    return cpu;
}

task<timing> run_pool(primary<proto>& p, const job_pool_options& o, std::uint64_t jobs, std::uint32_t rounds) {
    const double cpu_before = cluster_cpu(p), primary_before = bench::own_cpu_seconds();
    const auto start = clock_type::now();
    job_pool<proto, job, job_done> pool(p, o);
    auto [submitted, answered] = co_await when_all(submit_all(pool, jobs, rounds), collect(pool));
    const timing t{seconds_since(start), cluster_cpu(p) - cpu_before};
    std::fprintf(stderr, "job_pool_bench: the primary's CPU: %.2f us/job\n",
                 (bench::own_cpu_seconds() - primary_before) * 1e6 / static_cast<double>(jobs));
    if (answered != jobs)
        std::fprintf(stderr, "job_pool_bench: %llu of %llu jobs answered\n", static_cast<unsigned long long>(answered),
                     static_cast<unsigned long long>(jobs));
    co_return t;
}

struct settings {
    unsigned rounds = 5;
    std::uint64_t jobs = 100'000;
    job_pool_options pool;
};

task<void> measure(primary<proto>& p, const settings& s, std::uint32_t work_rounds) {
    co_await p.scale(workers);
    for (unsigned slot : p.slots()) (void)co_await p.worker_in_slot(slot);
    std::vector<double> pooled, threaded, pooled_cpu, threaded_cpu;
    for (unsigned r = 0; r < s.rounds; ++r) {
        const auto t = run_threads(s.jobs, work_rounds);
        const auto c = co_await run_pool(p, s.pool, s.jobs, work_rounds);
        threaded.push_back(t.wall);
        threaded_cpu.push_back(t.cpu);
        pooled.push_back(c.wall);
        pooled_cpu.push_back(c.cpu);
        std::fprintf(stderr, "job_pool_bench: round %u: job_pool %.3f s (CPU %.2f s), threads %.3f s (CPU %.2f s)\n",
                     r + 1, c.wall, c.cpu, t.wall, t.cpu);
    }
    co_await p.shutdown();
    const double per_job = 1e6 / static_cast<double>(s.jobs);
    bench::print({"job_pool_vs_threads", bench::median(pooled) * per_job, "us/job",
                  "a pool of 2 std::threads doing the same jobs (mutex + condition_variable queue)",
                  bench::median(threaded) * per_job, "lower", "ratio <= 1.3"});
    bench::print({"job_pool_cpu_vs_threads", bench::median(pooled_cpu) * per_job, "us/job of CPU",
                  "the same thread pool's CPU time", bench::median(threaded_cpu) * per_job, "lower", "reported"});
}

unsigned long option(int argc, char** argv, std::string_view flag, unsigned long fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return std::strtoul(argv[i + 1], nullptr, 10);
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    s.rounds = static_cast<unsigned>(option(argc, argv, "--rounds", s.rounds));
    s.jobs = option(argc, argv, "--jobs", s.jobs);
    s.pool.in_flight = static_cast<unsigned>(option(argc, argv, "--in-flight", s.pool.in_flight));
    const std::uint32_t work_rounds = calibrate();
    std::fprintf(
        stderr,
        "job_pool_bench: %llu jobs of %u xorshift rounds (about %lld us), %u workers, in_flight %u (0: paced)\n",
        static_cast<unsigned long long>(s.jobs), work_rounds, static_cast<long long>(job_cost.count()), workers,
        s.pool.in_flight);
    io_context ctx;
    primary<proto> p(primary_options{}, worker_main);
    sync_wait(measure(p, s, work_rounds));
}
