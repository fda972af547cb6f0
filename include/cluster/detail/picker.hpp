// cluster::detail::picker: which worker gets a connection the primary accepted, by the
// listening socket's schedule — a pure choice among its members, from the client's address
// or sticky key, their open connections, and what it remembers (whose turn it is, sticky clients).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <cluster/net/endpoint.hpp>
#include <cluster/net/schedule.hpp>

namespace cluster::detail {

// Sticky clients remembered at most; past it the table starts over, and the rendezvous
// hash still sends each address (or key) where it went while its worker lives.
inline constexpr std::size_t sticky_table_limit = 1u << 16;

// A sticky key's hash: FNV-1a, the same in every run (a new primary after a binary upgrade
// sends a key where the old one did), mixed apart from address hashes.
inline std::uint64_t key_hash(std::string_view key) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char c : key) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    return net::detail::fmix64(h ^ 0x6b65795f68617368ull);
}

// Rendezvous (highest random weight) hashing: an address keeps its worker while that
// worker lives, whoever else comes and goes.
inline std::uint64_t rendezvous_weight(std::uint64_t address, unsigned worker_id) noexcept {
    return net::detail::fmix64(address ^ (static_cast<std::uint64_t>(worker_id) * 0x9e3779b97f4a7c15ull));
}

// A worker listening on the socket, as the picker sees it.
struct pick_member {
    unsigned worker_id = 0;
    std::size_t connections = 0;    // handed to it through this socket and not closed yet
    bool takes_connections = true;  // connected, and not leaving
    bool refused = false;           // it said no to this very connection
    bool saturated = false;         // as many connections offered and unanswered as it may have
};

class picker {
    using live_members = std::vector<const pick_member*>;

public:
    // `custom` is schedule::custom's function, which outlives the picker.
    picker(net::schedule s, const net::pick_function* custom) noexcept : schedule_(s), custom_(custom) {}

    // The worker that gets a connection from `client`, among `members` in the order they
    // joined: one that takes connections, has not refused this one and is not saturated.
    // 0 when none can — or, for sticky, when the client's worker is saturated: its client
    // waits for it rather than lose its worker to a burst.
    // Schedules where the workers accept themselves get what a graceful stop takes out of
    // their sockets in turn.
    unsigned pick(const net::endpoint& client, std::span<const pick_member> members) {
        return pick(net::pick_context{client, {}, {}}, members);
    }

    // The same, for a connection whose first bytes were peeked at: sticky goes by the key
    // found in them, or by the address when there is none.
    unsigned pick(const net::pick_context& c, std::span<const pick_member> members) {
        live_members live;
        for (const auto& m : members)
            if (m.takes_connections && !m.refused) live.push_back(&m);
        if (schedule_ == net::schedule::sticky && !live.empty())
            return sticky(c.key.empty() ? c.client.address_hash() : key_hash(c.key), members, live);
        std::erase_if(live, [](const pick_member* m) { return m->saturated; });
        if (live.empty()) return 0;
        switch (schedule_) {
        case net::schedule::least_connections: return least(members, live);
        case net::schedule::custom: return chosen(c, members, live);
        default: return in_turn(members, live);
        }
    }

private:
    // The next of `among` after the last one served, in join order.
    unsigned in_turn(std::span<const pick_member> members, const live_members& among) {
        const std::size_t n = members.size();
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t at = (cursor_ + i) % n;
            if (std::find(among.begin(), among.end(), &members[at]) != among.end()) {
                cursor_ = at + 1;
                return members[at].worker_id;
            }
        }
        return 0;
    }

    // Ties in turn, so that equals share alike.
    unsigned least(std::span<const pick_member> members, const live_members& live) {
        std::size_t fewest = std::numeric_limits<std::size_t>::max();
        for (const auto* m : live) fewest = std::min(fewest, m->connections);
        live_members least;
        for (const auto* m : live)
            if (m->connections == fewest) least.push_back(m);
        return in_turn(members, least);
    }

    // `address`: the client's, or its key's, hash. 0 while its worker is saturated.
    unsigned sticky(std::uint64_t address, std::span<const pick_member> members, const live_members& live) {
        auto known = sticky_.find(address);
        if (known != sticky_.end())
            for (const auto* m : live)
                if (m->worker_id == known->second) return m->saturated ? 0 : m->worker_id;
        const pick_member* best = nullptr;
        std::uint64_t best_weight = 0;
        for (const auto* m : live) {
            const auto w = rendezvous_weight(address, m->worker_id);
            if (!best || w > best_weight) {
                best = m;
                best_weight = w;
            }
        }
        // Re-mapped only when its worker no longer takes connections, not when it refused one.
        const bool its_worker_left =
            known == sticky_.end() || std::none_of(members.begin(), members.end(), [&](const pick_member& m) {
                return m.worker_id == known->second && m.takes_connections;
            });
        if (best->saturated) return 0;
        if (its_worker_left) {
            if (sticky_.size() >= sticky_table_limit) sticky_.clear();
            sticky_[address] = best->worker_id;
        }
        return best->worker_id;
    }

    // The user's choice, if it is one of the live; else the next in turn.
    unsigned chosen(const net::pick_context& c, std::span<const pick_member> members, const live_members& live) {
        std::vector<net::candidate> candidates;
        candidates.reserve(live.size());
        for (const auto* m : live) candidates.push_back(net::candidate{m->worker_id, m->connections});
        const unsigned choice = custom_ && *custom_ ? (*custom_)(c, candidates) : 0;
        for (const auto* m : live)
            if (m->worker_id == choice) return choice;
        return in_turn(members, live);
    }

    net::schedule schedule_;
    const net::pick_function* custom_;
    std::size_t cursor_ = 0;
    std::unordered_map<std::uint64_t, unsigned> sticky_;
};

}  // namespace cluster::detail
