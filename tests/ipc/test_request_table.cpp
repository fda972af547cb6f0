// ipc::request_table: requests completed by their tags, late and unknown answers refused,
// the end of a channel failing every request, tags that wrap around, and waits with and
// without a timeout.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/ipc/request_table.hpp>

#include <cstdint>
#include <optional>
#include <string>

using namespace cluster;
using namespace std::chrono_literals;

namespace {

using table = ipc::request_table<std::string>;

// request_table keeps its next tag to itself, and wrapping it honestly takes 2^32
// requests: an explicit instantiation may name a private member ([temp.spec.general]/6).
template <std::uint32_t table::*Member>
struct next_tag_access {
    friend std::uint32_t& next_tag(table& t) { return t.*Member; }
};
template struct next_tag_access<&table::next_>;
std::uint32_t& next_tag(table& t);

// Runs body on a fresh loop with a fresh table to work on.
template <class Body>
void run_on(Body body) {
    io_context ctx;
    table subject;
    sync_wait(body(subject));
}

task<void> response_into(table::slot& s, std::optional<result<std::string>>& got) { got = co_await s.response(); }

task<void> unbounded_response_into(table::slot& s, std::optional<result<std::string>>& got) {
    got = co_await ipc::response_within<std::string>(s, std::chrono::milliseconds::max());
}

}  // namespace

TEST_CASE("a request table completes requests by tag and refuses unknown or late tags") {
    run_on([](table& t) -> task<void> {
        table::slot a(t), b(t);
        CHECK(a.tag() != 0);
        CHECK(b.tag() != 0);
        CHECK(a.tag() != b.tag());
        CHECK(t.size() == 2);
        const auto a_tag = a.tag();

        std::optional<result<std::string>> got_a, got_b;
        scope s;
        s.spawn(response_into(a, got_a));
        s.spawn(response_into(b, got_b));
        CHECK(t.complete(b.tag(), "for b"));
        CHECK(t.complete(a.tag(), "for a"));
        CHECK_FALSE(t.complete(a_tag, "answered already"));
        CHECK_FALSE(t.complete(0xdead, "never asked"));
        co_await s.join();
        REQUIRE(got_a);
        REQUIRE(got_b);
        CHECK(got_a->value() == "for a");
        CHECK(got_b->value() == "for b");
        CHECK(t.size() == 0);

        std::uint32_t gave_up = 0;
        {
            table::slot c(t);
            gave_up = c.tag();
            auto timed = co_await with_timeout(c.response(), 1ms);
            CHECK(timed.error() == std::errc::timed_out);
        }
        CHECK(t.size() == 0);
        CHECK_FALSE(t.complete(gave_up, "too late"));

        // A response that came before anyone waited is there when they do.
        table::slot d(t);
        CHECK(t.complete(d.tag(), "early"));
        auto early = co_await d.response();
        CHECK(early.value() == "early");
    });
}

TEST_CASE("fail_all fails the requests waiting and every one made after") {
    run_on([](table& t) -> task<void> {
        table::slot waiting(t);
        const auto tag = waiting.tag();
        std::optional<result<std::string>> got;
        scope s;
        s.spawn(response_into(waiting, got));
        t.fail_all(make_error_code(errc::peer_gone));
        CHECK(t.size() == 0);
        CHECK_FALSE(t.complete(tag, "after the end"));
        co_await s.join();
        REQUIRE(got);
        CHECK(got->error() == errc::peer_gone);

        table::slot later(t);
        CHECK(later.tag() == 0);
        CHECK(t.size() == 0);
        auto r = co_await later.response();
        CHECK(r.error() == errc::peer_gone);
    });
}

TEST_CASE("request tags wrap around past 0 and past tags still in use") {
    io_context ctx;
    table t;
    table::slot one(t), two(t);
    REQUIRE(one.tag() == 1);
    REQUIRE(two.tag() == 2);
    next_tag(t) = 0xfffffffe;
    table::slot last(t);
    CHECK(last.tag() == 0xffffffff);
    table::slot wrapped(t);
    CHECK(wrapped.tag() == 3);  // 0 means "no tag"; 1 and 2 are still waiting
    CHECK(t.size() == 4);
}

TEST_CASE("response_within() times a wait out, and with duration::max() arms no timer and waits for the answer") {
    run_on([](table& t) -> task<void> {
        table::slot timed(t);
        auto late = co_await ipc::response_within<std::string>(timed, 10ms);
        CHECK(late.error() == std::errc::timed_out);

        table::slot unbounded(t);
        std::optional<result<std::string>> got;
        scope s;
        s.spawn(unbounded_response_into(unbounded, got));
        CHECK_FALSE(got);
        CHECK(t.complete(unbounded.tag(), "answer"));
        co_await s.join();
        REQUIRE(got);
        CHECK(got->value() == "answer");
    });
    // With nothing else in flight, a timer would keep the loop waiting; with none, the loop
    // finds that nothing can end the wait, and says so.
    io_context ctx;
    table t;
    table::slot forever(t);
    CHECK_THROWS(sync_wait(ipc::response_within<std::string>(forever, std::chrono::milliseconds::max())));
}
