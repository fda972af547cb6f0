// detail::log_tap: each follower gets a copy of every relayed write, in order; one that falls
// follower_backlog behind is dropped (closed, marked, forgotten) while the others go on.
#include <catch2/catch.hpp>

#include <cluster/detail/log_tap.hpp>
#include <cluster/io/io_context.hpp>

#include <string>

using namespace cluster;
using namespace cluster::detail;

TEST_CASE("every follower gets every write in order, and none is kept for a follower gone") {
    io::io_context ctx;
    log_tap tap;
    auto a = tap.follow(), b = tap.follow();
    tap.copy("[worker 1] one\n");
    tap.copy("[worker 2] two\n");
    for (auto* f : {a.get(), b.get()}) {
        CHECK(f->lines.try_take() == "[worker 1] one\n");
        CHECK(f->lines.try_take() == "[worker 2] two\n");
    }
    tap.forget(a);
    tap.copy("three\n");
    CHECK(tap.followers() == 1);
    CHECK_FALSE(a->lines.try_take());
    CHECK(b->lines.try_take() == "three\n");
}

TEST_CASE("a follower that falls its backlog behind is dropped, and the others keep theirs") {
    io::io_context ctx;
    log_tap tap;
    auto slow = tap.follow(), quick = tap.follow();
    const std::string chunk(4096, 'x');
    std::size_t copied = 0;
    for (; copied + chunk.size() <= follower_backlog; copied += chunk.size()) {
        tap.copy(chunk);
        (void)quick->lines.try_take();
    }
    CHECK_FALSE(slow->dropped);
    tap.copy(chunk);
    CHECK(slow->dropped);
    CHECK(slow->lines.closed());
    CHECK(tap.followers() == 1);
    CHECK(slow->lines.queued_cost() == copied);  // what it had is still there to send
    CHECK(quick->lines.try_take() == chunk);
}
