// ipc_bench: typed messages between two processes through channel<P>, each figure beside
// a baseline measured in the same run — raw socketpair I/O, a hand-written codec, and
// Node.js cluster's process.send when node is installed.
#include <cluster/cluster.hpp>
#include <cluster/ipc/channel.hpp>

#include <boost/describe.hpp>

#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "blocking_io.hpp"
#include "report.hpp"
#include "sample.hpp"

// co_await results are bound before they are tested: g++ 12 miscompiles
// `if (!co_await x)` (see docs/runtime.md).

using namespace cluster;
using clock_type = std::chrono::steady_clock;

namespace bench_types {

// A large payload: inline through the socket when heap-backed, as one fd when memfd-backed.
struct blob {
    std::uint64_t id = 0;
    shared_bytes bytes;
};
BOOST_DESCRIBE_STRUCT(blob, (), (id, bytes))

struct ack {
    std::uint64_t size = 0;
};
BOOST_DESCRIBE_STRUCT(ack, (), (size))

}  // namespace bench_types

using namespace bench_types;
using proto = protocol<sample, blob, ack>;

namespace {

constexpr int repeats = 5;

sample make_sample(std::uint64_t id) { return sample{id, 2, 3.5, "sample-name1", {1, 2, 3, 4, 5, 6, 7}}; }

double seconds_since(clock_type::time_point start) {
    return std::chrono::duration<double>(clock_type::now() - start).count();
}

using bench::read_full;
using bench::write_full;

// Runs `body(fd)` in a child process on its own end of a fresh socketpair; the parent
// gets the other end and a handle that reaps the child.
template <class Body>
std::pair<child_process, unique_fd> spawn(Body body) {
    auto [mine, theirs] = ipc::make_socket_pair().value();
    auto child = child_process::fork().value();
    if (child.is_child()) {
        mine.reset();
        body(std::move(theirs));
        _exit(0);
    }
    return {std::move(child), std::move(mine)};
}

// Runs `body(channel)` in a child process as spawn() does, on a loop of its own.
template <class Body>
std::pair<child_process, unique_fd> spawn_channel(ipc::channel_options options, Body body) {
    return spawn([options, body](unique_fd s) {
        io_context ctx;
        channel<proto> ch(std::move(s), options);
        sync_wait(body(ch));
    });
}

// ---- round trip ----

constexpr int rtt_rounds = 20'000;

double raw_rtt_ns() {
    auto [child, fd] = spawn([](unique_fd s) {
        char m[64];
        while (read_full(s.get(), m, sizeof m) && write_full(s.get(), m, sizeof m)) {}
    });
    char m[64] = {};
    auto start = clock_type::now();
    for (int i = 0; i < rtt_rounds; ++i)
        if (!write_full(fd.get(), m, sizeof m) || !read_full(fd.get(), m, sizeof m)) std::abort();
    double ns = seconds_since(start) * 1e9 / rtt_rounds;
    fd.reset();
    (void)child.try_wait();
    return ns;
}

double typed_rtt_ns() {
    auto [child, fd] = spawn_channel({}, [](channel<proto>& ch) -> task<void> {
        while (auto m = co_await ch.receive()) {
            auto sent = co_await ch.send(std::get<sample>(*m));
            if (!sent) co_return;
        }
    });
    io_context ctx;
    channel<proto> ch(std::move(fd));
    double ns = sync_wait([&]() -> task<double> {
        const sample s = make_sample(1);
        auto start = clock_type::now();
        for (int i = 0; i < rtt_rounds; ++i) {
            (void)co_await ch.send(s);
            auto reply = co_await ch.receive();
            if (!reply) std::abort();
        }
        co_return seconds_since(start) * 1e9 / rtt_rounds;
    }());
    return ns;
}

// Both processes of a round trip on one CPU, the first this process may use (a child
// inherits it): no wake-up crosses CPUs, and each side waits only for the other's work.
class pinned_to_one_cpu {
public:
    pinned_to_one_cpu() {
        if (::sched_getaffinity(0, sizeof before_, &before_) != 0) std::abort();
        cpu_set_t one;
        CPU_ZERO(&one);
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &before_)) {
                CPU_SET(cpu, &one);
                break;
            }
        }
        if (::sched_setaffinity(0, sizeof one, &one) != 0) std::abort();
    }
    pinned_to_one_cpu(const pinned_to_one_cpu&) = delete;
    pinned_to_one_cpu& operator=(const pinned_to_one_cpu&) = delete;
    ~pinned_to_one_cpu() { (void)::sched_setaffinity(0, sizeof before_, &before_); }

private:
    cpu_set_t before_;
};

// ---- one way ----

constexpr std::uint64_t raw_frames = 16'000'000;
constexpr std::uint64_t typed_messages = 4'000'000;

// The physical ceiling: 64-byte length-prefixed frames packed into 64 KiB writes, and a
// reader that walks every frame (and reads a field of it, as any consumer would).
double raw_oneway_per_second() {
    auto [child, fd] = spawn([](unique_fd s) {
        std::vector<char> batch(64 * 1024);
        for (std::size_t off = 0; off < batch.size(); off += 64) {
            std::uint32_t len = 60;
            std::memcpy(batch.data() + off, &len, 4);
        }
        for (std::uint64_t sent = 0; sent < raw_frames; sent += batch.size() / 64)
            if (!write_full(s.get(), batch.data(), batch.size())) return;
    });
    std::vector<char> buf(64 * 1024);
    std::uint64_t frames = 0, checksum = 0;
    std::size_t carry = 0;
    auto start = clock_type::now();
    while (frames < raw_frames) {
        ssize_t r = ::read(fd.get(), buf.data() + carry, buf.size() - carry);
        if (r <= 0) std::abort();
        std::size_t avail = carry + static_cast<std::size_t>(r), off = 0;
        while (avail - off >= 64) {
            std::uint32_t len;
            std::memcpy(&len, buf.data() + off, 4);
            checksum += len;
            off += 4 + len;
            ++frames;
        }
        carry = avail - off;
        std::memmove(buf.data(), buf.data() + off, carry);
    }
    double rate = static_cast<double>(frames) / seconds_since(start);
    if (checksum != frames * 60) std::abort();
    fd.reset();
    return rate;
}

double typed_oneway_per_second() {
    auto [child, fd] = spawn_channel({}, [](channel<proto>& ch) -> task<void> {
        sample m = make_sample(0);
        for (std::uint64_t i = 0; i < typed_messages; ++i) {
            m.id = i;
            auto sent = co_await ch.send(m);
            if (!sent) co_return;
        }
        (void)co_await ch.shutdown();
    });
    io_context ctx;
    channel<proto> ch(std::move(fd));
    return sync_wait([&]() -> task<double> {
        std::uint64_t n = 0, ids = 0;
        auto start = clock_type::now();
        while (auto m = co_await ch.receive()) {
            ids += std::get<sample>(*m).id;
            ++n;
        }
        if (n != typed_messages || ids != typed_messages * (typed_messages - 1) / 2) std::abort();
        co_return static_cast<double>(n) / seconds_since(start);
    }());
}

// Node's cluster module doing the same, when node is installed; 0 when it is not.
double node_oneway_per_second() {
    if (std::system("command -v node >/dev/null 2>&1") != 0) return 0;
    std::string cmd = std::string("node ") + CLUSTER_BENCH_DIR + "/node/ipc_oneway.js 200000";
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return 0;
    char line[256] = {};
    double rate = 0;
    if (std::fgets(line, sizeof line, p)) std::sscanf(line, "{\"messages_per_second\":%lf", &rate);
    ::pclose(p);
    return rate;
}

// ---- large payloads ----

constexpr std::size_t large = 64u << 20;

// Bytes per second moving `large` bytes to a child that reads them all and answers.
double raw_large_per_second() {
    auto [child, fd] = spawn([](unique_fd s) {
        std::vector<char> buf(large);
        char ok = 1;
        while (read_full(s.get(), buf.data(), buf.size()) && write_full(s.get(), &ok, 1)) {}
    });
    std::vector<char> payload(large, 'x');
    std::vector<double> rates;
    for (int r = 0; r <= repeats; ++r) {
        auto start = clock_type::now();
        char ok;
        if (!write_full(fd.get(), payload.data(), payload.size()) || !read_full(fd.get(), &ok, 1)) std::abort();
        if (r > 0) rates.push_back(large / seconds_since(start));
    }
    return bench::median(rates);
}

// The payload is built once, outside the timed loop, like the raw baseline's buffer:
// copied into a heap-backed value, or written into a memfd and frozen (sealed).
double typed_large_per_second(bool in_memfd) {
    ipc::channel_options options;
    options.memfd_threshold = 2 * large;  // inline unless the value itself is a memfd
    options.high_water_mark = 2 * large;
    options.max_frame_size = 2 * large;  // the default (64 MiB) is just short of 64 MiB + its length
    auto [child, fd] = spawn_channel(options, [](channel<proto>& ch) -> task<void> {
        while (auto m = co_await ch.receive()) {
            // The child holds the bytes as a value it can read (shared, not copied).
            const blob& got = std::get<blob>(*m);
            const ack done{got.bytes.size()};
            auto sent = co_await ch.send(done);
            if (!sent) co_return;
        }
    });
    io_context ctx;
    channel<proto> ch(std::move(fd), options);
    return sync_wait([&]() -> task<double> {
        blob payload;
        if (in_memfd) {
            shared_bytes::builder b(large);
            std::memset(b.data(), 'x', large);
            payload.bytes = std::move(b).freeze();
        } else {
            const std::vector<std::byte> bytes(large, std::byte{'x'});
            payload.bytes = shared_bytes(std::span(bytes));
        }
        if (payload.bytes.memfd_backed() != in_memfd) std::abort();
        std::vector<double> rates;
        for (int r = 0; r <= repeats; ++r) {
            auto start = clock_type::now();
            (void)co_await ch.send(payload);
            auto reply = co_await ch.receive();
            if (!reply || std::get<ack>(*reply).size != large) std::abort();
            if (r > 0) rates.push_back(large / seconds_since(start));
        }
        co_return bench::median(rates);
    }());
}

// ---- codec ----

// What a careful programmer writes by hand for `sample`: fields memcpy'd in order.
struct hand_codec {
    static void encode(const sample& s, wire::buffer& out) {
        const std::uint32_t len = static_cast<std::uint32_t>(s.name.size());
        std::byte* p = out.extend(8 + 4 + 8 + 4 + len + sizeof s.v);
        std::memcpy(p, &s.id, 8), p += 8;
        std::memcpy(p, &s.kind, 4), p += 4;
        std::memcpy(p, &s.value, 8), p += 8;
        std::memcpy(p, &len, 4), p += 4;
        std::memcpy(p, s.name.data(), len), p += len;
        std::memcpy(p, s.v.data(), sizeof s.v);
    }
    static bool decode(std::span<const std::byte> in, sample& s) {
        if (in.size() < 24) return false;
        const std::byte* p = in.data();
        std::uint32_t len;
        std::memcpy(&s.id, p, 8), p += 8;
        std::memcpy(&s.kind, p, 4), p += 4;
        std::memcpy(&s.value, p, 8), p += 8;
        std::memcpy(&len, p, 4), p += 4;
        if (in.size() != 24 + len + sizeof s.v) return false;
        s.name.assign(reinterpret_cast<const char*>(p), len), p += len;
        std::memcpy(s.v.data(), p, sizeof s.v);
        return true;
    }
};

template <class Fn>
double ns_per_op(Fn fn) {
    constexpr int n = 2'000'000;
    auto start = clock_type::now();
    for (int i = 0; i < n; ++i) fn(i);
    return seconds_since(start) * 1e9 / n;
}

std::pair<double, double> codec_ns() {
    wire::buffer buf(256);
    std::uint64_t sink = 0;
    sample s = make_sample(0);
    auto typed = [&](int i) {
        s.id = static_cast<std::uint64_t>(i);
        buf.clear();
        wire::encode(s, buf);
        auto back = wire::decode<sample>(buf.bytes());
        sink += back->id;
    };
    auto hand = [&](int i) {
        s.id = static_cast<std::uint64_t>(i);
        buf.clear();
        hand_codec::encode(s, buf);
        sample back;
        if (hand_codec::decode(buf.bytes(), back)) sink += back.id;
    };
    std::vector<double> t, h;
    for (int r = 0; r < repeats; ++r) {
        t.push_back(ns_per_op(typed));
        h.push_back(ns_per_op(hand));
    }
    if (sink == 0) std::abort();
    return {bench::median(t), bench::median(h)};
}

}  // namespace

int main(int argc, char** argv) {
    if (bench::answered_help(argc, argv,
                             "  Typed messages between two processes through channel<P>, beside raw socketpair\n"
                             "  I/O, a hand-written codec and Node's process.send; one JSON line per figure.\n"))
        return 0;
    {
        wire::buffer probe;
        wire::encode(make_sample(0), probe);
        std::fprintf(stderr, "small message: %zu encoded bytes\n", probe.size());
    }

    std::vector<double> raw_rtt, typed_rtt, raw_rate, typed_rate, raw_rtt_pinned, typed_rtt_pinned;
    for (int r = 0; r < repeats; ++r) {
        raw_rtt.push_back(raw_rtt_ns());
        typed_rtt.push_back(typed_rtt_ns());
        raw_rate.push_back(raw_oneway_per_second());
        typed_rate.push_back(typed_oneway_per_second());
    }
    {
        const pinned_to_one_cpu pinned;
        for (int r = 0; r < repeats; ++r) {
            raw_rtt_pinned.push_back(raw_rtt_ns());
            typed_rtt_pinned.push_back(typed_rtt_ns());
        }
    }
    const double node_rate = node_oneway_per_second();
    const double raw_large = raw_large_per_second();
    const double copy_large = typed_large_per_second(false);
    const double memfd_large = typed_large_per_second(true);
    const auto [typed_codec, hand_codec_ns] = codec_ns();

    bench::print({"ipc_rtt", bench::median(typed_rtt), "ns", "blocking read/write ping-pong of 64 bytes",
                  bench::median(raw_rtt), "lower", "ratio <= 1.15"});
    bench::print({"ipc_rtt_pinned", bench::median(typed_rtt_pinned), "ns",
                  "blocking read/write ping-pong of 64 bytes, both processes on one CPU", bench::median(raw_rtt_pinned),
                  "lower", "ratio <= 1.10"});
    bench::print({"ipc_oneway_vs_raw", bench::median(typed_rate), "messages/s",
                  "raw pump: 64-byte length-prefixed frames in 64 KiB writes, walked by the reader",
                  bench::median(raw_rate), "higher", "ratio >= 0.5"});
    if (node_rate > 0)
        bench::print({"ipc_oneway_vs_node", bench::median(typed_rate), "messages/s",
                      "Node.js cluster process.send of the same object", node_rate, "higher", "ratio >= 50"});
    else
        std::fprintf(stderr, "ipc_oneway_vs_node: skipped, node is not installed\n");
    bench::print({"ipc_large_copy", copy_large / 1e6, "MB/s", "raw socketpair copy of 64 MiB", raw_large / 1e6,
                  "higher", "ratio >= 0.8"});
    bench::print({"ipc_large_memfd", memfd_large / 1e6, "MB/s", "raw socketpair copy of 64 MiB", raw_large / 1e6,
                  "higher", "ratio >= 3"});
    bench::print({"codec_small", typed_codec, "ns", "hand-written memcpy codec, encode+decode", hand_codec_ns, "lower",
                  "ratio <= 1.3"});
}
