// redis_bench: SET then GET per second through cluster::redis with 16 commands in flight on
// one connection, beside redis-benchmark -P 16 (one connection, pipelines of 16) against the
// same redis-server in the same run, which this program starts on loopback and stops.
// Rounds alternate between the two; each figure is the median round.
//   redis_bench [--rounds N] [--requests N]
#include <cluster/io.hpp>
#include <cluster/redis.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "report.hpp"
#include "support/redis_server.hpp"

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr unsigned in_flight = 16;

struct settings {
    unsigned rounds = 3;
    unsigned long requests = 200'000;  // of SET, then as many of GET
};

// SET and GET per second, combined as the rate of the two phases back to back.
double combined(double set_rate, double get_rate) { return 2 / (1 / set_rate + 1 / get_rate); }

// One of the 16 lanes: its share of the commands, each awaited before the next.
task<void> lane(redis::client& c, std::string_view verb, unsigned first, unsigned long count) {
    for (unsigned long i = first; i < count; i += in_flight) {
        const auto key = "key:" + std::to_string(i % 10000);
        auto command = verb == "SET" ? c.command("SET", key, "xxx") : c.command("GET", key);
        auto r = co_await std::move(command);
        if (!r || r->is_error()) throw std::runtime_error("redis_bench: a " + std::string(verb) + " failed");
    }
}

task<double> rate(redis::client& c, std::string_view verb, unsigned long count) {
    std::vector<task<void>> lanes;
    for (unsigned i = 0; i < in_flight; ++i) lanes.push_back(lane(c, verb, i, count));
    const auto start = clock_type::now();
    (void)co_await when_all(std::move(lanes));
    co_return static_cast<double>(count) / std::chrono::duration<double>(clock_type::now() - start).count();
}

task<double> ours(const support::redis_server& server, unsigned long requests) {
    redis::options o;
    o.server = server.tcp();
    redis::client c(o);
    auto up = co_await c.connect();
    if (!up) throw std::runtime_error("redis_bench: cannot connect: " + up.error().message());
    const double set_rate = co_await rate(c, "SET", requests);
    const double get_rate = co_await rate(c, "GET", requests);
    co_await c.close();
    std::fprintf(stderr, "redis_bench: cluster::redis   SET %.0f/s GET %.0f/s\n", set_rate, get_rate);
    co_return combined(set_rate, get_rate);
}

// redis-benchmark's rate for one test, from its --csv line ("SET","123456.79",...).
double csv_rate(const std::string& csv, std::string_view test) {
    const auto at = csv.find("\"" + std::string(test) + "\",\"");
    if (at == std::string::npos)
        throw std::runtime_error("redis_bench: redis-benchmark printed no " + std::string(test));
    return std::strtod(csv.c_str() + at + test.size() + 4, nullptr);
}

double theirs(const support::redis_server& server, unsigned long requests) {
    const std::string command = "redis-benchmark -h 127.0.0.1 -p " + std::to_string(server.port()) + " -c 1 -P " +
                                std::to_string(in_flight) + " -n " + std::to_string(requests) +
                                " -r 10000 -d 3 -t set,get --csv";
    std::unique_ptr<FILE, int (*)(FILE*)> out(::popen(command.c_str(), "r"), ::pclose);
    if (!out) throw std::runtime_error("redis_bench: cannot run redis-benchmark");
    std::string csv;
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, out.get())) csv.append(buf, n);
    const double set_rate = csv_rate(csv, "SET");
    const double get_rate = csv_rate(csv, "GET");
    std::fprintf(stderr, "redis_bench: redis-benchmark  SET %.0f/s GET %.0f/s\n", set_rate, get_rate);
    return combined(set_rate, get_rate);
}

unsigned long option(int argc, char** argv, std::string_view flag, unsigned long fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (argv[i] == flag) return std::strtoul(argv[i + 1], nullptr, 10);
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "SET and GET per second through cluster::redis with 16 commands in flight, beside\n"
                             "redis-benchmark -c 1 -P 16 -t set,get against the same redis-server (started here).\n"
                             "Options: --rounds N (3), --requests N (200000 of each command).\n"))
        return 0;
    settings s;
    s.rounds = static_cast<unsigned>(option(argc, argv, "--rounds", s.rounds));
    s.requests = option(argc, argv, "--requests", s.requests);
    support::redis_server server;
    std::vector<double> mine, baseline;
    io_context ctx;
    for (unsigned r = 0; r < s.rounds; ++r) {
        mine.push_back(sync_wait(ours(server, s.requests)));
        baseline.push_back(theirs(server, s.requests));
    }
    bench::print({"redis_pipeline_vs_redis_benchmark", bench::median(mine), "commands/s",
                  "redis-benchmark -c 1 -P 16 -t set,get on the same server (SET and GET rates combined)",
                  bench::median(baseline), "higher", "ratio >= 0.8"});
}
