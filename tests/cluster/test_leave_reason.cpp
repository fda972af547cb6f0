// A worker learns why the primary disconnects it (worker<leave_proto>::leave_reason()): replaced by a
// rolling reload, going away for good when scaled down, disconnected or stopped.
#include <catch2/catch.hpp>

#include "support/primary.hpp"
#include "support/waiting.hpp"

#include <cluster/cluster.hpp>

#include <boost/describe.hpp>

#include <cstdint>
#include <set>
#include <utility>

using namespace cluster;
using support::bounded;

namespace {

// Worker to primary: its leave_reason() once its stop token was requested, and before.
struct left {
    std::uint8_t before = 0;
    std::uint8_t after = 0;
};
BOOST_DESCRIBE_STRUCT(left, (), (before, after))

// Worker to primary: its code runs (a worker asked to leave before then could not be staying).
struct started {
    std::uint8_t unused = 0;
};
BOOST_DESCRIBE_STRUCT(started, (), (unused))

using leave_proto = protocol<left, started>;

task<void> reporting_worker(worker<leave_proto>& w) {
    const auto before = w.leave_reason();
    const started hello{};
    (void)co_await w.send(hello);
    while (co_await w.receive()) {}
    const left said{static_cast<std::uint8_t>(before), static_cast<std::uint8_t>(w.leave_reason())};
    (void)co_await w.send(said);
}

task<void> running(primary<leave_proto>& p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) (void)co_await bounded(p.next_message<started>());
}

// The next worker to leave: what it said, checked to have been staying before.
task<leave_reason> next_leaving(primary<leave_proto>& p) {
    auto m = co_await bounded(p.next_message<left>());
    CHECK(m.value.before == static_cast<std::uint8_t>(leave_reason::staying));
    co_return static_cast<leave_reason>(m.value.after);
}

task<void> reload_then_scale_down_then_disconnect(primary<leave_proto>& p) {
    for (int i = 0; i < 2; ++i) (void)co_await support::fork_worker(p);
    co_await running(p, 2);

    auto reloaded = co_await bounded(p.reload());
    CHECK(reloaded.ok);
    for (int i = 0; i < 2; ++i) {
        const auto why = co_await next_leaving(p);
        CHECK(why == leave_reason::replaced);
    }
    co_await running(p, 2);  // the replacements

    co_await bounded(p.scale(1));
    const auto scaled = co_await next_leaving(p);
    CHECK(scaled == leave_reason::going_away);

    auto workers = p.workers();
    REQUIRE(workers.size() == 1);
    (void)co_await bounded(workers.front()->disconnect());
    const auto disconnected = co_await next_leaving(p);
    CHECK(disconnected == leave_reason::going_away);
}

}  // namespace

TEST_CASE("leave_reason: replaced by a rolling reload, going away when scaled down or disconnected") {
    support::with_primary<leave_proto>(primary_options{}, reporting_worker, reload_then_scale_down_then_disconnect);
}

TEST_CASE("leave_reason names") {
    CHECK(std::string(to_string(leave_reason::staying)) == "staying");
    CHECK(std::string(to_string(leave_reason::going_away)) == "going away");
    CHECK(std::string(to_string(leave_reason::replaced)) == "replaced");
}
