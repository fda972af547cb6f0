// sharded_store: a key-value store split across workers, one shard per slot. A key lives in
// the shard its hash picks; the worker serving a shard keeps it in memory and in a file
// named for the slot. The worker that replaces a dead one has a new id and the same slot:
// it reads that shard back from the file and answers as if nothing had happened.
//   ./sharded_store [--help] [--workers N] [--keys K]
// Stores K keys, SIGKILLs one shard's worker, reads every key back, and prints
// "K keys stored in N shards; shard S: worker A killed, worker B took over; K/K read back".
// Exit code 0 if every key came back from the slot's new worker.
#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

using namespace cluster;
using namespace std::chrono_literals;

struct put {
    std::string key, value;
};
struct get {
    std::string key;
};
struct stored {
    bool ok = false;
};
struct found {
    bool present = false;
    std::string value;
};
BOOST_DESCRIBE_STRUCT(put, (), (key, value))
BOOST_DESCRIBE_STRUCT(get, (), (key))
BOOST_DESCRIBE_STRUCT(stored, (), (ok))
BOOST_DESCRIBE_STRUCT(found, (), (present, value))
using proto = protocol<put, get, stored, found>;

// A shard's file: one "key<TAB>value" line per put, the last one for a key winning.
std::unordered_map<std::string, std::string> load(const std::string& file) {
    std::unordered_map<std::string, std::string> shard;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);)
        if (auto tab = line.find('\t'); tab != std::string::npos) shard[line.substr(0, tab)] = line.substr(tab + 1);
    return shard;
}

task<void> worker_main(worker<proto>& w, std::string dir) {
    const std::string file = dir + "/shard-" + std::to_string(w.slot());
    auto shard = load(file);
    std::ofstream log(file, std::ios::app);
    while (auto m = co_await w.receive()) {
        if (auto* p = m->get_if<put>()) {
            log << p->key << '\t' << p->value << '\n' << std::flush;  // in the file before the answer
            shard[p->key] = p->value;
            const stored ack{true};
            (void)co_await w.reply(*m, ack);
        } else if (auto* g = m->get_if<get>()) {
            auto it = shard.find(g->key);
            const found f{it != shard.end(), it != shard.end() ? it->second : std::string()};
            (void)co_await w.reply(*m, f);
        }
    }
}

// Asks the worker serving `slot`; a request that its death cut short goes to its replacement.
template <class Reply, class Message>
task<result<Reply>> ask(primary<proto>& p, unsigned slot, const Message& m) {
    for (int attempt = 0;; ++attempt) {
        auto h = co_await p.worker_in_slot(slot);
        if (!h) co_return h.error();
        auto reply = co_await (*h)->template request<Reply>(m, 5s);
        if (reply || reply.error() != make_error_code(errc::peer_gone) || attempt == 3) co_return reply;
    }
}

task<void> primary_main(primary<proto>& p, unsigned shards, unsigned keys, bool& ok) {
    co_await p.scale(shards);
    const auto slots = p.slots();  // a shard per slot, for the cluster's whole life
    auto slot_of = [&slots](const std::string& key) { return slots[std::hash<std::string>{}(key) % slots.size()]; };
    for (unsigned i = 0; i < keys; ++i) {
        const put p_i{"key " + std::to_string(i), "value " + std::to_string(i)};
        auto r = co_await ask<stored>(p, slot_of(p_i.key), p_i);
        if (!r) std::fprintf(stderr, "put %u: %s\n", i, r.error().message().c_str());
    }
    auto victim = co_await p.worker_in_slot(slots.front());
    const unsigned killed = victim ? (*victim)->id() : 0;
    if (victim) (void)(*victim)->kill(SIGKILL);
    unsigned read_back = 0;
    for (unsigned i = 0; i < keys; ++i) {
        const get g{"key " + std::to_string(i)};
        auto r = co_await ask<found>(p, slot_of(g.key), g);
        if (r && r->present && r->value == "value " + std::to_string(i)) ++read_back;
    }
    auto now = co_await p.worker_in_slot(slots.front());
    const unsigned serving = now ? (*now)->id() : 0;
    std::printf("%u keys stored in %u shards; shard %u: worker %u killed, worker %u took over; %u/%u read back\n", keys,
                shards, slots.front(), killed, serving, read_back, keys);
    ok = read_back == keys && serving != 0 && serving != killed;
    co_await p.shutdown();
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
        std::printf("usage: %s [--workers N] [--keys K]\n"
                    "  A key-value store in N shards (default 4), one per worker slot, each kept in memory and in\n"
                    "  a file named for its slot. Stores K keys (default 1000), SIGKILLs one shard's worker, reads\n"
                    "  every key back through its replacement, and exits 0 if all K came back.\n",
                    argv[0]);
        return 0;
    }
    const unsigned shards = option(argc, argv, "--workers", 4), keys = option(argc, argv, "--keys", 1000);
    const auto dir = std::filesystem::temp_directory_path() / ("sharded_store." + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    bool ok = false;
    const int code = run<proto>(
        argc, argv, [&](primary<proto>& p) { return primary_main(p, shards, keys, ok); },
        [&dir](worker<proto>& w) { return worker_main(w, dir.string()); });
    std::filesystem::remove_all(dir);  // only the primary gets here
    if (code != exit_code::ok) return code;
    return ok ? 0 : 2;
}
