// detail::picker on its own, for every schedule: who gets a connection among a listening
// socket's members, skipping those that take none or refused it, and what it remembers;
// sticky by key, and custom's pick_context.
#include <catch2/catch.hpp>

#include <cluster/detail/picker.hpp>

#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

using cluster::detail::pick_member;
using cluster::detail::picker;
using cluster::net::candidate;
using cluster::net::endpoint;
using cluster::net::pick_function;
using cluster::net::schedule;

namespace {

const endpoint client = endpoint::tcp("127.0.0.1", 40000);

std::vector<pick_member> members_of(std::initializer_list<unsigned> ids) {
    std::vector<pick_member> out;
    for (unsigned id : ids) out.push_back(pick_member{id});
    return out;
}

std::vector<unsigned> picks(picker& p, const std::vector<pick_member>& members, int n, const endpoint& from = client) {
    std::vector<unsigned> out;
    for (int i = 0; i < n; ++i) out.push_back(p.pick(from, members));
    return out;
}

endpoint client_number(int i) {
    return endpoint::tcp("10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250), 1);
}

}  // namespace

TEST_CASE("round_robin hands out in join order, skipping members that take nothing or refused") {
    picker p(schedule::round_robin, nullptr);
    auto members = members_of({4, 2, 9});
    CHECK(picks(p, members, 6) == std::vector<unsigned>{4, 2, 9, 4, 2, 9});
    members[1].takes_connections = false;  // leaving
    CHECK(picks(p, members, 4) == std::vector<unsigned>{4, 9, 4, 9});
    members[0].refused = true;
    CHECK(picks(p, members, 2) == std::vector<unsigned>{9, 9});
    members[2].refused = true;
    CHECK(p.pick(client, members) == 0);
    CHECK(p.pick(client, {}) == 0);
}

TEST_CASE("shared and reuseport hand out what a graceful stop takes from their sockets in turn") {
    for (auto s : {schedule::shared, schedule::reuseport}) {
        picker p(s, nullptr);
        CHECK(picks(p, members_of({1, 2, 3}), 4) == std::vector<unsigned>{1, 2, 3, 1});
    }
}

TEST_CASE("least_connections picks the fewest open, and equals in turn") {
    picker p(schedule::least_connections, nullptr);
    auto members = members_of({1, 2, 3});
    members[0].connections = 5;
    members[1].connections = 2;
    members[2].connections = 2;
    CHECK(picks(p, members, 4) == std::vector<unsigned>{2, 3, 2, 3});
    members[1].refused = true;
    CHECK(p.pick(client, members) == 3);
    members[2].takes_connections = false;
    CHECK(p.pick(client, members) == 1);  // the busiest, when it is all there is
}

TEST_CASE("sticky keeps a client on its worker while that worker takes connections") {
    picker p(schedule::sticky, nullptr);
    auto members = members_of({1, 2, 3, 4});
    std::map<int, unsigned> first;
    std::set<unsigned> used;
    for (int i = 0; i < 200; ++i) used.insert(first[i] = p.pick(client_number(i), members));
    CHECK(used.size() == 4);  // the hash spreads the clients
    for (int i = 0; i < 200; ++i) CHECK(p.pick(client_number(i), members) == first[i]);
    CHECK(picks(p, members, 3) == std::vector<unsigned>(3, p.pick(client, members)));
}

TEST_CASE("sticky moves a client only when its worker leaves, not when it refuses once") {
    picker p(schedule::sticky, nullptr);
    auto members = members_of({1, 2, 3});
    const unsigned home = p.pick(client, members);
    auto refusing = members;
    for (auto& m : refusing) m.refused = m.worker_id == home;
    const unsigned elsewhere = p.pick(client, refusing);
    CHECK(elsewhere != home);
    CHECK(p.pick(client, members) == home);  // the refusal did not move it

    for (auto& m : members) m.takes_connections = m.worker_id != home;
    const unsigned moved = p.pick(client, members);
    CHECK(moved != home);
    for (auto& m : members) m.takes_connections = true;  // once moved, it stays where it went
    CHECK(p.pick(client, members) == moved);
}

TEST_CASE("sticky keeps a client for its saturated worker: it waits, and moves nowhere") {
    picker p(schedule::sticky, nullptr);
    auto members = members_of({1, 2, 3});
    const unsigned home = p.pick(client, members);
    for (auto& m : members) m.saturated = m.worker_id == home;
    CHECK(p.pick(client, members) == 0);
    picker fresh(schedule::sticky, nullptr);  // a client seen first while its worker is saturated
    CHECK(fresh.pick(client, members) == 0);
    for (auto& m : members) m.saturated = false;
    CHECK(p.pick(client, members) == home);
    CHECK(fresh.pick(client, members) == home);
}

TEST_CASE("the other schedules pass a saturated worker by") {
    for (auto s : {schedule::round_robin, schedule::least_connections}) {
        picker p(s, nullptr);
        auto members = members_of({1, 2, 3});
        members[1].saturated = true;
        CHECK(picks(p, members, 4) == std::vector<unsigned>{1, 3, 1, 3});
        for (auto& m : members) m.saturated = true;
        CHECK(p.pick(client, members) == 0);
    }
}

TEST_CASE("sticky's rendezvous hash keeps clients where they were when other workers come and go") {
    picker p(schedule::sticky, nullptr);
    const auto three = members_of({1, 2, 3});
    const auto four = members_of({1, 2, 3, 4});
    picker fresh(schedule::sticky, nullptr);
    int kept = 0;
    for (int i = 0; i < 300; ++i) {
        const unsigned before = fresh.pick(client_number(i), three);
        picker later(schedule::sticky, nullptr);  // remembers nothing: the hash alone decides
        const unsigned after = later.pick(client_number(i), four);
        kept += before == after ? 1 : 0;
        if (before != after) CHECK(after == 4);  // only moved to the newcomer
    }
    CHECK(kept > 150);  // about three in four stay
}

TEST_CASE("custom asks the user's function, and falls back to round robin on an answer that is no live worker") {
    pick_function by_fewest_then_highest = [](const endpoint&, std::span<const candidate> live) {
        const candidate* best = &live.front();
        for (const auto& c : live)
            if (c.connections < best->connections ||
                (c.connections == best->connections && c.worker_id > best->worker_id))
                best = &c;
        return best->worker_id;
    };
    picker p(schedule::custom, &by_fewest_then_highest);
    auto members = members_of({1, 2, 3});
    members[2].connections = 1;
    CHECK(p.pick(client, members) == 2);
    members[1].refused = true;
    CHECK(p.pick(client, members) == 1);  // only live members are candidates

    pick_function nobody = [](const endpoint&, std::span<const candidate>) { return 99u; };
    picker fallback(schedule::custom, &nobody);
    CHECK(picks(fallback, members_of({1, 2}), 3) == std::vector<unsigned>{1, 2, 1});
    const pick_function empty;
    picker unset(schedule::custom, &empty);
    CHECK(picks(unset, members_of({5, 6}), 2) == std::vector<unsigned>{5, 6});
}

TEST_CASE("sticky by key: one key, one worker, whatever the address, and the address when there is no key") {
    picker p(schedule::sticky, nullptr);
    const auto members = members_of({1, 2, 3});
    std::map<std::string, unsigned> home;
    std::set<unsigned> used;
    for (int i = 0; i < 60; ++i) {
        const std::string key = "sid-" + std::to_string(i);
        used.insert(home[key] = p.pick(cluster::net::pick_context{client, {}, key}, members));
    }
    CHECK(used.size() == 3);  // keys spread, though every connection came from one address
    for (int i = 0; i < 60; ++i) {
        const std::string key = "sid-" + std::to_string(i);
        CHECK(p.pick(cluster::net::pick_context{client_number(i), {}, key}, members) == home[key]);
    }
    picker by_address(schedule::sticky, nullptr);
    CHECK(p.pick(cluster::net::pick_context{client, "GET / HTTP/1.1\r\n", {}}, members) ==
          by_address.pick(client, members));
}

TEST_CASE("custom's function may take the pick_context: the peeked bytes and the key") {
    std::string seen_bytes, seen_key;
    pick_function by_key = [&](const cluster::net::pick_context& c, std::span<const candidate> live) {
        seen_bytes = c.peeked;
        seen_key = c.key;
        return c.key == "b" ? live.back().worker_id : live.front().worker_id;
    };
    picker p(schedule::custom, &by_key);
    const auto members = members_of({1, 2});
    CHECK(p.pick(cluster::net::pick_context{client, "GET /?k=b HTTP/1.1\r\n", "b"}, members) == 2);
    CHECK(seen_bytes == "GET /?k=b HTTP/1.1\r\n");
    CHECK(seen_key == "b");
    CHECK(p.pick(client, members) == 1);  // by address alone: no bytes, no key
    CHECK(seen_bytes.empty());
    CHECK(seen_key.empty());
}
