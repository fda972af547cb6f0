// metrics_bench: a worker's counter update through a cached handle, beside a plain relaxed
// atomic increment in the same run; and the primary's scrape of 64 workers' snapshots of 50
// series each (decoded from the wire, aggregated, rendered), in wall and CPU time, beside
// text_writer alone writing every sample those snapshots hold. Rounds alternate; figures are
// the median round.
//   metrics_bench
#include <cluster/metrics.hpp>
#include <cluster/wire/codec.hpp>

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "report.hpp"

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr int rounds = 7;
constexpr std::uint64_t increments = 100'000'000;
constexpr unsigned workers = 64;
constexpr int scrapes_per_round = 20;

// Out of line, the two loops are the same code around the increment each measures.
[[gnu::noinline]] void count(metrics::counter& c, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) c.inc();
}
[[gnu::noinline]] void count(std::atomic<std::uint64_t>& a, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) a.fetch_add(1, std::memory_order_relaxed);
}

template <class Counter>
double ns_per_increment(Counter& c) {
    const auto start = clock_type::now();
    count(c, increments);
    return std::chrono::duration<double, std::nano>(clock_type::now() - start).count() / increments;
}

double cpu_ms() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}

// 50 series, as a web worker might have them: 20 + 10 counters, 10 gauges, 10 histograms
// with Prometheus's default buckets.
void fill(metrics::registry& r, unsigned worker) {
    auto& requests = r.counter("http_requests_total", "HTTP requests.", {"method", "code"});
    for (const char* method : {"GET", "POST", "PUT", "DELETE"})
        for (const char* code : {"200", "201", "404", "500", "503"}) requests.with({method, code}).inc(worker * 7 + 1);
    auto& jobs = r.counter("jobs_total", "Jobs done.", {"kind"});
    auto& depth = r.gauge("queue_depth", "Jobs waiting.", {"queue"});
    auto& latency = r.histogram("request_duration_seconds", "Request duration.", {"route"},
                                {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    for (unsigned i = 0; i < 10; ++i) {
        const auto name = "k" + std::to_string(i);
        jobs.with({name}).inc(worker + i);
        depth.with({name}).set(worker * 0.5 + i);
        auto& h = latency.with({"/route/" + std::to_string(i)});
        for (unsigned k = 0; k < 100; ++k) h.observe(0.001 * (k * (worker + 1) % 5000));
    }
}

struct scrape_cost {
    double wall_ms;
    double cpu_ms;
};

// A scrape as the primary will do it: each worker's snapshot decoded and taken in, the page
// rendered.
scrape_cost scrape(metrics::aggregate& a, const std::vector<wire::buffer>& sent, std::string& page) {
    const auto start = clock_type::now();
    const double cpu_start = cpu_ms();
    for (int s = 0; s < scrapes_per_round; ++s) {
        for (unsigned w = 0; w < workers; ++w) {
            auto snapshot = wire::decode<metrics::registry_snapshot>(sent[w].bytes());
            if (!snapshot || !a.update(w, std::move(*snapshot)).accepted) std::abort();
        }
        page.clear();
        metrics::text_writer out(page);
        a.render(out);
    }
    return {std::chrono::duration<double, std::milli>(clock_type::now() - start).count() / scrapes_per_round,
            (cpu_ms() - cpu_start) / scrapes_per_round};
}

// One worker's family, each series with a worker label: the baseline's page.
void write_family(metrics::text_writer& out, const metrics::family_snapshot& f, std::string_view worker) {
    const auto& d = f.definition;
    std::vector<metrics::label> labels(d.label_names.size() + 2);  // then worker, then le
    for (std::size_t i = 0; i < d.label_names.size(); ++i) labels[i].name = d.label_names[i];
    labels[d.label_names.size()] = {"worker", worker};
    const std::span<const metrics::label> without_le(labels.data(), labels.size() - 1);
    std::vector<std::string> bounds(d.buckets.size());
    for (std::size_t i = 0; i < bounds.size(); ++i) metrics::append_value(bounds[i], d.buckets[i]);
    const std::string bucket = d.name + "_bucket", sum = d.name + "_sum", count = d.name + "_count";
    labels.back().name = "le";
    for (const auto& series : f.series) {
        for (std::size_t i = 0; i < series.labels.size(); ++i) labels[i].value = series.labels[i];
        if (d.type == metrics::metric_type::counter) {
            out.sample(d.name, without_le, series.counts[0]);
        } else if (d.type == metrics::metric_type::gauge) {
            out.sample(d.name, without_le, series.value);
        } else {
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < series.counts.size(); ++i) {
                cumulative += series.counts[i];
                labels.back().value = i < bounds.size() ? std::string_view(bounds[i]) : "+Inf";
                out.sample(bucket, labels, cumulative);
            }
            out.sample(sum, without_le, series.value);
            out.sample(count, without_le, cumulative);
        }
    }
}

// The baseline: every sample of every worker's snapshot written by text_writer, as a page
// that listed each worker's series apart would be, with nothing decoded or combined.
scrape_cost write_alone(const std::vector<metrics::registry_snapshot>& snapshots, std::string& page) {
    const auto start = clock_type::now();
    const double cpu_start = cpu_ms();
    for (int s = 0; s < scrapes_per_round; ++s) {
        page.clear();
        metrics::text_writer out(page);
        for (unsigned w = 0; w < workers; ++w) {
            const auto worker = std::to_string(w);
            for (const auto& f : snapshots[w].families) write_family(out, f, worker);
        }
    }
    return {std::chrono::duration<double, std::milli>(clock_type::now() - start).count() / scrapes_per_round,
            (cpu_ms() - cpu_start) / scrapes_per_round};
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "  A counter update through a cached handle, beside a relaxed atomic increment; a\n"
                             "  scrape of 64 workers x 50 series (decode, aggregate, render; wall and CPU),\n"
                             "  beside text_writer alone writing the same samples. One JSON line per figure.\n"))
        return 0;

    metrics::registry r;
    auto& handle = r.counter("bench_increments_total", "Increments.", {"kind"}).with({"cached"});
    std::atomic<std::uint64_t> plain{0};
    std::vector<double> handle_ns, plain_ns;
    for (int i = 0; i <= rounds; ++i) {
        const double h = ns_per_increment(handle);
        const double p = ns_per_increment(plain);
        if (i == 0) continue;  // the first pair warms up
        handle_ns.push_back(h);
        plain_ns.push_back(p);
    }

    std::vector<metrics::registry_snapshot> snapshots(workers);
    std::vector<wire::buffer> sent(workers);
    std::size_t sent_bytes = 0;
    for (unsigned w = 0; w < workers; ++w) {
        metrics::registry worker_registry;
        fill(worker_registry, w);
        snapshots[w] = worker_registry.snapshot();
        wire::encode(snapshots[w], sent[w]);
        sent_bytes += sent[w].size();
    }
    metrics::aggregate a;
    std::string page, alone;
    std::vector<double> wall, cpu, alone_wall, alone_cpu;
    for (int i = 0; i <= rounds; ++i) {
        const auto s = scrape(a, sent, page);
        const auto b = write_alone(snapshots, alone);
        if (i == 0) continue;
        wall.push_back(s.wall_ms);
        cpu.push_back(s.cpu_ms);
        alone_wall.push_back(b.wall_ms);
        alone_cpu.push_back(b.cpu_ms);
    }
    std::printf("# snapshots: %u x %zu bytes on the wire; page %zu bytes; per-worker page %zu bytes\n", workers,
                sent_bytes / workers, page.size(), alone.size());

    bench::print({"metrics_counter_update", bench::median(handle_ns), "ns",
                  "std::atomic<uint64_t>::fetch_add(1, relaxed)", bench::median(plain_ns), "lower", "ratio <= 2"});
    bench::print({"metrics_scrape_64x50", bench::median(wall), "ms", "text_writer alone, every worker's samples apart",
                  bench::median(alone_wall), "lower", "none (information)"});
    bench::print({"metrics_scrape_64x50_cpu", bench::median(cpu), "ms CPU",
                  "text_writer alone, every worker's samples apart", bench::median(alone_cpu), "lower",
                  "none (information)"});
}
