// Tests cluster/io/detail/fifo.hpp: the loop's queues keep their order through wrap-arounds,
// growth, removals, and keep their capacity once warm.
#include <catch2/catch.hpp>

#include <cluster/io/detail/fifo.hpp>

#include <vector>

using cluster::io::detail::fifo;

namespace {

std::vector<int> drained(fifo<int>& q) {
    std::vector<int> out;
    for (; !q.empty(); q.pop_front()) out.push_back(q.front());
    return out;
}

}  // namespace

TEST_CASE("fifo: first in, first out, across wrap-arounds and growth") {
    fifo<int> q;
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 100; ++round) {
        for (int i = 0; i < round % 37; ++i) q.push_back(next_in++);  // grows past 16, 32
        for (int i = 0; i < round % 23 && !q.empty(); ++i, q.pop_front()) REQUIRE(q.front() == next_out++);
    }
    for (const int v : drained(q)) REQUIRE(v == next_out++);
    CHECK(next_out == next_in);
    CHECK(q.size() == 0);
}

TEST_CASE("fifo: take_first and erase remove from the middle, the rest in order") {
    fifo<int> q;
    for (int i = 0; i < 10; ++i) q.push_back(i);
    for (int i = 0; i < 6; ++i) q.pop_front();
    for (int i = 10; i < 20; ++i) q.push_back(i % 3 == 0 ? 99 : i);  // wrapped: head at 6
    int got = 0;
    REQUIRE(q.take_first([](int v) { return v == 11; }, got));
    CHECK(got == 11);
    CHECK_FALSE(q.take_first([](int v) { return v == 11; }, got));
    q.erase(99);
    CHECK(drained(q) == std::vector<int>{6, 7, 8, 9, 10, 13, 14, 16, 17, 19});
}
