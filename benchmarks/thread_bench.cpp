// thread_bench: thread workers (start_mode::thread), each figure beside a baseline measured in
// the same run — a 64-byte typed message's round trip against the same with a forked worker and
// against Node.js worker_threads' postMessage; messages one way against a plain queue between
// two threads; 16 workers online against 16 forked ones.
#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "report.hpp"
#include "sample.hpp"

// co_await results are bound before they are tested: g++ 12 miscompiles
// `if (!co_await x)` (see docs/runtime.md).

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace bench_types {

struct ack {
    std::uint64_t count = 0;
};
BOOST_DESCRIBE_STRUCT(ack, (), (count))

}  // namespace bench_types

using namespace bench_types;
using proto = protocol<sample, ack>;

namespace {

constexpr int repeats = 5;
constexpr int rtt_rounds = 20'000;
constexpr int warmup = 2'000;
constexpr std::uint64_t oneway_count = 1'000'000;
constexpr std::uint64_t oneway_window = 10'000;
constexpr unsigned online_workers = 16;

// What a sample asks of the worker. A rally: the worker plays ping-pong with the worker whose id
// the sample's id names, and answers the primary with the nanoseconds its rounds took.
enum : std::uint32_t { echo = 1, count = 2, last = 3, rally = 4, ping = 5, pong = 6 };

sample make_sample(std::uint64_t id, std::uint32_t kind) {
    return sample{id, kind, 3.5, "sample-name1", {1, 2, 3, 4, 5, 6, 7}};
}

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

// The rounds of a rally with worker `peer`, each a ping sent to it and its pong awaited, in
// nanoseconds after the warm-up.
task<std::uint64_t> rally_ns(worker<proto>& w, unsigned peer) {
    auto s = make_sample(0, ping);
    clock_type::time_point start;
    for (int i = 0; i < warmup + rtt_rounds; ++i) {
        if (i == warmup) start = clock_type::now();
        s.id = static_cast<std::uint64_t>(i);
        auto sent = co_await w.send_to(peer, s);
        if (!sent) std::abort();
        auto back = co_await w.receive<sample>();
        if (!back || back->value.kind != pong || back->value.id != s.id) std::abort();
    }
    co_return static_cast<std::uint64_t>(seconds_since(start) * 1e9);
}

// Echoes the echo samples and pings, rallies when asked, counts the others, and says how many
// once the last has come.
task<void> worker_main(worker<proto>& w) {
    std::uint64_t counted = 0;
    while (auto m = co_await w.receive()) {
        auto* s = m->get_if<sample>();
        if (!s) continue;
        if (s->kind == echo) {
            (void)co_await w.send(*s);
            continue;
        }
        if (s->kind == ping) {
            s->kind = pong;
            (void)co_await w.send_to(m->from, *s);
            continue;
        }
        if (s->kind == rally) {
            const ack took{co_await rally_ns(w, static_cast<unsigned>(s->id))};
            (void)co_await w.send(took);
            continue;
        }
        ++counted;
        if (s->kind == last) {
            const ack done{counted};
            (void)co_await w.send(done);
            counted = 0;
        }
    }
}

// body(p) against a primary whose workers start in `mode`, on a loop of its own.
template <class Body>
double with_primary(start_mode mode, Body body) {
    io_context ctx;
    primary_options o;
    o.mode = mode;
    primary<proto> p(o, worker_main);
    const double out = sync_wait(body(p));
    sync_wait(p.shutdown());
    return out;
}

template <class Body>
task<double> one_worker_then(primary<proto>& p, Body body) {
    auto& h = co_await p.fork();
    (void)co_await p.next<online_event>();
    co_return co_await body(p, h);
}

// body(p, h) against a primary of one worker started in `mode`.
template <class Body>
double with_one_worker(start_mode mode, Body body) {
    return with_primary(mode, [body](primary<proto>& p) { return one_worker_then(p, body); });
}

// ---- round trip ----

task<double> rtt_ns(primary<proto>& p, worker_handle<proto>& h) {
    auto s = make_sample(0, echo);
    clock_type::time_point start;
    for (int i = 0; i < warmup + rtt_rounds; ++i) {
        if (i == warmup) start = clock_type::now();
        s.id = static_cast<std::uint64_t>(i);
        auto sent = co_await h.send(s);
        if (!sent) std::abort();
        auto back = co_await p.next_message<sample>();
        if (back.value.id != s.id) std::abort();
    }
    co_return seconds_since(start) * 1e9 / rtt_rounds;
}

// Between the main thread and a worker, or between two workers through a MessageChannel.
double node_rtt_ns(bool between_workers) {
    if (std::system("command -v node >/dev/null 2>&1") != 0) return 0;
    const std::string cmd = std::string("node ") + CLUSTER_BENCH_DIR + "/node/thread_rtt.js " +
                            std::to_string(rtt_rounds) + (between_workers ? " between" : " main");
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return 0;
    char line[256] = {};
    double ns = 0;
    if (std::fgets(line, sizeof line, p)) std::sscanf(line, "{\"round_trip_ns\":%lf", &ns);
    ::pclose(p);
    return ns;
}

// A round trip between two workers: the first sends to the second with send_to(), which
// answers the same way; the primary routes both.
task<double> between_workers_rtt_ns(primary<proto>& p) {
    auto& a = co_await p.fork();
    auto& b = co_await p.fork();
    for (int i = 0; i < 2; ++i) (void)co_await p.next<online_event>();
    auto go = make_sample(b.id(), rally);
    auto sent = co_await a.send(go);
    if (!sent) std::abort();
    auto took = co_await p.next_message<ack>();
    co_return static_cast<double>(took.value.count) / rtt_rounds;
}

// ---- one way ----

// The worker acknowledges every oneway_window messages: a sender that outran it by more than its
// inbox holds (max_queued_bytes) would have the oldest dropped, as in process mode.
task<double> oneway_per_second(primary<proto>& p, worker_handle<proto>& h) {
    auto s = make_sample(0, count);
    const auto start = clock_type::now();
    for (std::uint64_t i = 0; i < oneway_count; ++i) {
        s.id = i;
        s.kind = (i + 1) % oneway_window == 0 ? last : count;
        auto sent = co_await h.send(s);
        if (!sent) std::abort();
        if (s.kind != last) continue;
        auto done = co_await p.next_message<ack>();
        if (done.value.count != oneway_window) std::abort();
    }
    co_return static_cast<double>(oneway_count) / seconds_since(start);
}

// The baseline: the same samples through a plain queue between two threads — a deque under a
// mutex, the consumer waiting on a condition variable and taking all that is queued at once.
double plain_queue_per_second() {
    std::mutex m;
    std::condition_variable cv;
    std::deque<sample> q;
    bool finished = false;
    std::uint64_t taken = 0;
    std::thread consumer([&] {
        std::deque<sample> batch;
        for (;;) {
            {
                std::unique_lock lock(m);
                cv.wait(lock, [&] { return !q.empty() || finished; });
                if (q.empty() && finished) return;
                batch.swap(q);
            }
            taken += batch.size();
            batch.clear();
        }
    });
    auto s = make_sample(0, count);
    const auto start = clock_type::now();
    for (std::uint64_t i = 0; i < oneway_count; ++i) {
        s.id = i;
        bool was_empty;
        {
            const std::lock_guard lock(m);
            was_empty = q.empty();
            q.push_back(s);
        }
        if (was_empty) cv.notify_one();
    }
    {
        const std::lock_guard lock(m);
        finished = true;
    }
    cv.notify_one();
    consumer.join();
    if (taken != oneway_count) std::abort();
    return static_cast<double>(oneway_count) / seconds_since(start);
}

// ---- workers online ----

// From the first fork() until `online_workers` workers are online, in milliseconds.
task<double> online_ms(primary<proto>& p) {
    const auto start = clock_type::now();
    for (unsigned i = 0; i < online_workers; ++i) (void)co_await p.fork();
    for (unsigned i = 0; i < online_workers; ++i) (void)co_await p.next<online_event>();
    co_return seconds_since(start) * 1e3;
}

void print_beside_node(const char* name, double ns, double node_ns, const char* baseline) {
    if (node_ns > 0)
        bench::print({name, ns, "ns", baseline, node_ns, "lower", "ratio <= 0.2"});
    else
        std::fprintf(stderr, "%s beside Node.js: skipped, node is not installed\n", name);
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "  Thread workers: a typed message's round trip beside a forked worker's and Node's\n"
                             "  worker_threads postMessage, messages one way beside a plain queue between two\n"
                             "  threads, 16 workers online beside 16 forked; one JSON line per figure.\n"))
        return 0;
    std::vector<double> thread_rtt, fork_rtt, primary_rtt, primary_fork_rtt, thread_rate, plain_rate, online_thread,
        online_fork, node_between_rtt, node_primary_rtt;
    for (int r = 0; r < repeats; ++r) {
        // Node's round trip on a small VM is bimodal (about 20 µs or 55 µs from one run to the
        // next): it is measured as often as ours and its median taken too.
        node_between_rtt.push_back(node_rtt_ns(true));
        node_primary_rtt.push_back(node_rtt_ns(false));
        thread_rtt.push_back(with_primary(start_mode::thread, between_workers_rtt_ns));
        fork_rtt.push_back(with_primary(start_mode::fork, between_workers_rtt_ns));
        primary_rtt.push_back(with_one_worker(start_mode::thread, rtt_ns));
        primary_fork_rtt.push_back(with_one_worker(start_mode::fork, rtt_ns));
        thread_rate.push_back(with_one_worker(start_mode::thread, oneway_per_second));
        plain_rate.push_back(plain_queue_per_second());
        online_thread.push_back(with_primary(start_mode::thread, online_ms));
        online_fork.push_back(with_primary(start_mode::fork, online_ms));
    }
    print_beside_node("thread_rtt", bench::median(thread_rtt), bench::median(node_between_rtt),
                      "Node.js: the same object's round trip between two worker_threads through a MessageChannel");
    bench::print({"thread_rtt_vs_process", bench::median(thread_rtt), "ns",
                  "the same round trip between two forked workers (process mode)", bench::median(fork_rtt), "lower",
                  "ratio <= 1"});
    print_beside_node("thread_rtt_primary", bench::median(primary_rtt), bench::median(node_primary_rtt),
                      "Node.js: the same object's round trip between the main thread and a worker_thread");
    bench::print({"thread_rtt_primary_vs_process", bench::median(primary_rtt), "ns",
                  "the same round trip with a forked worker (process mode)", bench::median(primary_fork_rtt), "lower",
                  "ratio <= 1"});
    bench::print({"thread_oneway", bench::median(thread_rate), "messages/s",
                  "a plain queue between two threads: a deque under a mutex, a condition variable",
                  bench::median(plain_rate), "higher", "ratio >= 0.5"});
    bench::print({"online_16_thread", bench::median(online_thread), "ms", "online_16_fork: 16 forked workers online",
                  bench::median(online_fork), "lower", "ratio <= 1"});
}
