// cluster::redis::subscriber against a real redis-server: channel and pattern subscriptions
// awaited message by message, and restored after the server restarts.
//
// Note for g++ 12: results of co_await are always named before they are tested.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/redis.hpp>

#include "support/redis_options.hpp"
#include "support/redis_server.hpp"
#include "support/waiting.hpp"

#include <chrono>
#include <string>
#include <utility>

using namespace cluster;
using namespace std::chrono_literals;
using support::bounded;
using support::redis_server;

namespace {

// Publishes to the one subscriber there is; the publisher may find its link down once,
// after a restart it has not noticed yet, and reconnects.
task<void> publish(redis::client& c, std::string channel, std::string text) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        auto receivers = co_await c.command("PUBLISH", channel, text);
        if (receivers) {
            CHECK(receivers->integer == 1);
            co_return;
        }
        (void)co_await c.wait_connected();
    }
    FAIL("PUBLISH failed after reconnecting");
}

}  // namespace

TEST_CASE("SUBSCRIBE and PSUBSCRIBE: each message awaited with next(), naming its channel and pattern") {
    redis_server server;
    sync_wait([](redis_server& server) -> task<void> {
        redis::client pub(support::redis_options(server.tcp()));
        redis::subscriber sub(support::redis_options(server.unix_socket()));
        auto up = co_await bounded(sub.connect(), "connect");
        REQUIRE(up.has_value());
        auto pub_up = co_await bounded(pub.connect(), "connect");
        REQUIRE(pub_up.has_value());
        auto subscribed = co_await bounded(sub.subscribe("news"), "SUBSCRIBE");
        REQUIRE(subscribed.has_value());
        auto psubscribed = co_await bounded(sub.psubscribe("log.*"), "PSUBSCRIBE");
        REQUIRE(psubscribed.has_value());

        (void)co_await pub.command("PUBLISH", "news", "hello");
        (void)co_await pub.command("PUBLISH", "log.error", "disk full");
        (void)co_await pub.command("PUBLISH", "elsewhere", "nobody listens");
        auto first = co_await bounded(sub.next(), "the first message");
        REQUIRE(first.has_value());
        CHECK(first->channel == "news");
        CHECK(first->pattern.empty());
        CHECK(first->payload == "hello");
        auto second = co_await bounded(sub.next(), "the pattern's message");
        REQUIRE(second.has_value());
        CHECK(second->pattern == "log.*");
        CHECK(second->channel == "log.error");
        CHECK(second->payload == "disk full");
        co_await sub.close();
        auto after = co_await sub.next();
        CHECK(after.error() == redis::errc::closed);
        co_await pub.close();
    }(server));
}

TEST_CASE("after a server restart the subscriber resubscribes, counts the restoration and receives again") {
    redis_server server;
    sync_wait([](redis_server& server) -> task<void> {
        redis::client pub(support::redis_options(server.tcp()));
        redis::subscriber sub(support::redis_options(server.tcp()));
        auto up = co_await bounded(sub.connect(), "connect");
        REQUIRE(up.has_value());
        auto pub_up = co_await bounded(pub.connect(), "connect");
        REQUIRE(pub_up.has_value());
        auto subscribed = co_await bounded(sub.subscribe("news"), "SUBSCRIBE");
        REQUIRE(subscribed.has_value());
        auto psubscribed = co_await bounded(sub.psubscribe("log.*"), "PSUBSCRIBE");
        REQUIRE(psubscribed.has_value());
        co_await bounded(publish(pub, "news", "before"), "the first message");
        auto before = co_await bounded(sub.next(), "the first message");
        REQUIRE(before.has_value());
        CHECK(before->payload == "before");

        CHECK(sub.restorations() == 0);

        server.stop();
        server.start();
        auto restored = co_await bounded(sub.wait_restored(0), "the resubscription");
        REQUIRE(restored.has_value());
        CHECK(sub.restorations() == 1);
        co_await bounded(publish(pub, "news", "after"), "the message after the restart");
        auto after = co_await bounded(sub.next(), "a message after the restart");
        REQUIRE(after.has_value());
        CHECK(after->channel == "news");
        CHECK(after->payload == "after");
        co_await bounded(publish(pub, "log.warn", "pattern too"), "the pattern's message");
        auto pattern = co_await bounded(sub.next(), "the pattern's message");
        REQUIRE(pattern.has_value());
        CHECK(pattern->pattern == "log.*");
        co_await sub.close();
        auto closed = co_await sub.wait_restored(1);
        CHECK(closed.error() == redis::errc::closed);
        co_await pub.close();
    }(server));
}
