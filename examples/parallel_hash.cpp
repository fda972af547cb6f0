// parallel_hash: one CPU-bound job set — hashing 256 blocks of a pseudo-random stream — run by
// worker processes and by worker threads of the same program: the start mode is one option.
//   ./parallel_hash [--help] [--mode fork|thread|both] [--workers N]
// prints "fork: 256 blocks in 812 ms, digest 1a2b…" for each mode, and exits 0 if the modes
// that ran agree on the digest.
#include <cluster/cluster.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace cluster;

struct block {
    std::uint64_t id = 0, seed = 0, rounds = 0;
};
BOOST_DESCRIBE_STRUCT(block, (), (id, seed, rounds))
struct digest {
    std::uint64_t id = 0, value = 0;
};
BOOST_DESCRIBE_STRUCT(digest, (), (id, value))
using proto = protocol<block, digest>;

constexpr std::uint64_t blocks = 256;

// FNV-1a over `rounds` words of a xorshift stream: the CPU-bound work, no memory to speak of.
std::uint64_t hash_block(const block& b) {
    std::uint64_t x = b.seed | 1, h = 1469598103934665603ull;
    for (std::uint64_t i = 0; i < b.rounds; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        h = (h ^ x) * 1099511628211ull;
    }
    return h;
}

task<void> worker_main(worker<proto>& w) {
    while (auto b = co_await w.receive<block>()) {
        const digest d{b->value.id, hash_block(b->value)};
        (void)co_await w.reply(*b, d);
    }
}

// Every block through a job_pool on `workers` workers; the digests combined, in block order.
task<void> hash_all(primary<proto>& p, unsigned workers, std::uint64_t& combined) {
    for (unsigned i = 0; i < workers; ++i) (void)co_await p.fork();
    job_pool<proto, block, digest> pool(p);
    for (std::uint64_t id = 0; id < blocks; ++id) {
        const block b{id, 0x9e3779b97f4a7c15ull * (id + 1), 4'000'000};
        (void)co_await pool.submit(b);
    }
    pool.close();
    while (auto done = co_await pool.next())
        if (auto& d = done->value) combined = combined * 31 + d->value;
    co_await p.shutdown();
}

// One run of the job set in `mode`: its time, said, and its digest.
int run_in(start_mode mode, int argc, char** argv, unsigned workers, std::uint64_t& combined) {
    primary_options o;
    o.mode = mode;
    const auto start = std::chrono::steady_clock::now();
    const int code = run<proto>(
        argc, argv, [&](primary<proto>& p) { return hash_all(p, workers, combined); }, worker_main, o);
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: %llu blocks on %u workers in %.0f ms, digest %016llx\n", to_string(mode),
                static_cast<unsigned long long>(blocks), workers, ms, static_cast<unsigned long long>(combined));
    return code;
}

int main(int argc, char** argv) {
    std::string_view mode = "both";
    unsigned workers = cpu_count();
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "--help" || a == "-h") {
            std::printf("usage: %s [--mode fork|thread|both] [--workers N]\n"
                        "  Hashes %llu blocks with worker processes and with worker threads, timing each.\n",
                        argv[0], static_cast<unsigned long long>(blocks));
            return 0;
        }
        if (a == "--mode" && i + 1 < argc) mode = argv[++i];
        if (a == "--workers" && i + 1 < argc) workers = static_cast<unsigned>(std::atoi(argv[++i]));
    }
    std::uint64_t by_fork = 0, by_thread = 0;
    if (mode != "thread")
        if (const int code = run_in(start_mode::fork, argc, argv, workers, by_fork)) return code;
    if (mode != "fork")
        if (const int code = run_in(start_mode::thread, argc, argv, workers, by_thread)) return code;
    return mode == "both" && by_fork != by_thread ? 2 : 0;
}
