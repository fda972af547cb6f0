// cluster::redis::client against a real redis-server of the test's own: 10,000 pipelined
// commands answered in order, every reply type, timeouts and stop tokens keeping the pipeline
// in order, AUTH and SELECT, a restart mid-stream, a server down at start, and bad input.
//
// Note for g++ 12: results of co_await are always named before they are tested.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/net/tcp_stream.hpp>
#include <cluster/redis.hpp>

#include "support/redis_options.hpp"
#include "support/redis_server.hpp"
#include "support/waiting.hpp"

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::bounded;
using support::redis_server;

namespace {

task<redis::reply> succeeded(task<result<redis::reply>> command) {
    auto r = co_await bounded(std::move(command), "a reply");
    REQUIRE(r.has_value());
    co_return std::move(*r);
}

// A command that must succeed, its reply returned. (The arguments are formatted here, not
// braced into a temporary inside co_await, which g++ 12 gets wrong.)
template <class... Args>
task<redis::reply> ok(redis::client& c, const Args&... args) {
    return succeeded(c.command(args...));
}

task<redis::client*> connected(redis::client& c) {
    auto up = co_await bounded(c.connect(), "connect");
    REQUIRE(up.has_value());
    co_return &c;
}

// Awaits `command` under `token` (when_all gives the tasks it runs a token of its own).
task<result<redis::reply>> under(std::stop_token token, task<result<redis::reply>> command) {
    co_return co_await std::move(command).with_stop_token(std::move(token));
}

// Requests a stop once `c` has the command under test in flight (behind `earlier` ones).
task<void> stop_once_sent(redis::client& c, std::stop_source& stop, std::size_t earlier) {
    REQUIRE(c.in_flight() == earlier + 1);
    stop.request_stop();
    co_return;
}

// An end-of-turn hook that reads, without waiting, what the server's side of a connection
// has been sent by then.
struct hook_reading : io::detail::completion {
    int fd;
    std::string got;
    explicit hook_reading(int server_side) : fd(server_side) {
        complete = [](io::detail::completion* self, int, unsigned, bool) noexcept {
            auto* me = static_cast<hook_reading*>(self);
            char buf[256];
            const ssize_t n = ::recv(me->fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) me->got.assign(buf, static_cast<std::size_t>(n));
        };
    }
};

}  // namespace

TEST_CASE("10,000 commands from as many tasks at once, over a Unix socket, are answered in order") {
    redis_server server;
    sync_wait([](redis_server& server) -> task<void> {
        redis::client c(support::redis_options(server.unix_socket()));
        (void)co_await connected(c);
        std::vector<task<result<redis::reply>>> incrs;
        for (int i = 0; i < 10000; ++i) incrs.push_back(c.command("INCR", "counter"));
        auto replies = co_await bounded(when_all(std::move(incrs)), "10,000 replies");
        REQUIRE(replies.size() == 10000);
        std::size_t in_order = 0;
        for (std::size_t i = 0; i < replies.size(); ++i)
            in_order += replies[i] && replies[i]->kind == redis::reply_kind::integer &&
                        replies[i]->integer == static_cast<std::int64_t>(i + 1);
        CHECK(in_order == 10000);
        co_await c.close();
    }(server));
}

TEST_CASE("every reply type, over TCP: status, string (binary-safe), nil, integer, error, nested arrays") {
    redis_server server;
    sync_wait([](redis_server& server) -> task<void> {
        redis::client c(support::redis_options(server.tcp()));
        (void)co_await connected(c);
        const std::string binary("a\0b\r\nc", 6);
        auto set = co_await ok(c, "SET", "k", binary);
        CHECK(set.kind == redis::reply_kind::status);
        CHECK(set.str() == "OK");
        auto get = co_await ok(c, "GET", "k");
        CHECK(get.kind == redis::reply_kind::string);
        CHECK(get.text == binary);
        auto missing = co_await ok(c, "GET", "no such key");
        CHECK(missing.is_nil());
        auto n = co_await c.command("INCRBY", "n", 41);
        REQUIRE(n.has_value());
        CHECK(n->kind == redis::reply_kind::integer);
        CHECK(n->integer == 41);
        auto wrong = co_await ok(c, "NO-SUCH-COMMAND");
        CHECK(wrong.is_error());
        CHECK(wrong.text.find("ERR") == 0);
        auto nested = co_await ok(c, "EVAL", "return {1, {2, 'x', {}}, 'y'}", 0);
        REQUIRE(nested.is_array());
        REQUIRE(nested.elements.size() == 3);
        CHECK(nested.elements[0].integer == 1);
        REQUIRE(nested.elements[1].is_array());
        CHECK(nested.elements[1].elements[1].text == "x");
        CHECK(nested.elements[1].elements[2].elements.empty());
        CHECK(nested.elements[2].text == "y");
        const std::span<const std::string_view> nothing;
        auto empty = co_await c.command_argv(nothing);
        CHECK(empty.error() == redis::errc::invalid_command);
        co_await c.close();
        auto after = co_await c.command("PING");
        CHECK(after.error() == redis::errc::closed);
    }(server));
}

TEST_CASE("a command that times out, and one cancelled by its stop token, leave the pipeline in order") {
    redis_server server;
    sync_wait([](redis_server& server) -> task<void> {
        redis::client c(support::redis_options(server.tcp()));
        redis::client pusher(support::redis_options(server.tcp()));
        (void)co_await connected(c);
        (void)co_await connected(pusher);

        auto timed_out = co_await with_timeout(c.command("BLPOP", "queue", 30), 100ms);
        CHECK(timed_out.error() == std::errc::timed_out);
        std::stop_source stop;
        auto both =
            co_await when_all(under(stop.get_token(), c.command("BLPOP", "other", 30)), stop_once_sent(c, stop, 1));
        CHECK(std::get<0>(both).error() == std::errc::operation_canceled);
        CHECK(c.in_flight() == 2);  // both replies are still due, and will be dropped

        // The two abandoned BLPOPs are answered first; PING must still get its own PONG.
        (void)co_await ok(pusher, "RPUSH", "queue", "x");
        (void)co_await ok(pusher, "RPUSH", "other", "y");
        auto pong = co_await ok(c, "PING");
        CHECK(pong.str() == "PONG");
        CHECK(c.in_flight() == 0);
        co_await c.close();
        co_await pusher.close();
    }(server));
}

TEST_CASE("AUTH with a password or a user and password, and SELECT, at connect") {
    redis_server server({"--requirepass", "secret"});
    sync_wait([](redis_server& server) -> task<void> {
        auto o = support::redis_options(server.tcp());
        redis::client anonymous(o);
        (void)co_await connected(anonymous);
        auto refused = co_await ok(anonymous, "GET", "k");
        CHECK(refused.is_error());
        CHECK(refused.text.find("NOAUTH") == 0);

        o.password = "wrong";
        redis::client wrong(o);
        auto denied = co_await bounded(wrong.connect(), "a refused AUTH");
        CHECK(denied.error() == redis::errc::handshake_failed);
        CHECK(wrong.last_refusal().find("WRONGPASS") == 0);
        co_await wrong.close();

        o.password = "secret";
        o.database = 3;
        redis::client in_3(o);
        (void)co_await connected(in_3);
        (void)co_await ok(in_3, "SET", "where", "three");
        o.database = 0;
        redis::client in_0(o);
        (void)co_await connected(in_0);
        auto absent = co_await ok(in_0, "GET", "where");
        CHECK(absent.is_nil());
        auto moved = co_await ok(in_0, "MOVE", "nothing", "3");
        CHECK(moved.integer == 0);
        (void)co_await ok(in_0, "ACL", "SETUSER", "alice", "on", ">pw", "~*", "+@all");

        o.user = "alice";
        o.password = "pw";
        o.database = 3;
        redis::client alice(o);
        (void)co_await connected(alice);
        auto who = co_await ok(alice, "ACL", "WHOAMI");
        CHECK(who.text == "alice");
        auto seen = co_await ok(alice, "GET", "where");
        CHECK(seen.text == "three");
        co_await anonymous.close();
        co_await in_3.close();
        co_await in_0.close();
        co_await alice.close();
    }(server));
}

TEST_CASE("a server restart mid-stream: the command in flight fails, later ones succeed after reconnecting") {
    redis_server server;
    sync_wait([](redis_server& server) -> task<void> {
        redis::client c(support::redis_options(server.tcp()));
        (void)co_await connected(c);
        (void)co_await ok(c, "SET", "before", "1");
        auto restart = [](redis::client& c, redis_server& server) -> task<void> {
            REQUIRE(c.in_flight() == 1);
            server.stop();
            server.start();
            co_return;
        };
        auto both = co_await bounded(when_all(c.command("BLPOP", "queue", 30), restart(c, server)), "the drop");
        CHECK(std::get<0>(both).error() == redis::errc::connection_lost);
        auto up = co_await bounded(c.wait_connected(), "the reconnection");
        REQUIRE(up.has_value());
        (void)co_await ok(c, "SET", "after", "2");
        auto after = co_await ok(c, "GET", "after");
        CHECK(after.text == "2");
        auto before = co_await ok(c, "GET", "before");
        CHECK(before.is_nil());  // a new server: nothing was saved
        co_await c.close();
    }(server));
}

TEST_CASE("a server down at start: connect fails cleanly, and the client connects once it is up") {
    redis_server server({}, false);
    sync_wait([](redis_server& server) -> task<void> {
        redis::client c(support::redis_options(server.tcp()));
        auto first = co_await bounded(c.connect(), "the first attempt");
        CHECK(first.error() == std::errc::connection_refused);
        auto early = co_await c.command("PING");
        CHECK(early.error() == redis::errc::not_connected);
        server.start();
        auto up = co_await bounded(c.wait_connected(), "the server to come up");
        REQUIRE(up.has_value());
        auto pong = co_await ok(c, "PING");
        CHECK(pong.str() == "PONG");
        co_await c.close();
    }(server));
}

TEST_CASE("limits: a reply over max_reply_bytes and commands past max_pending fail with a clear error") {
    redis_server server;
    sync_wait([](redis_server& server) -> task<void> {
        redis::client writer(support::redis_options(server.tcp()));
        (void)co_await connected(writer);
        (void)co_await ok(writer, "SET", "big", std::string(4096, 'x'));
        auto o = support::redis_options(server.tcp());
        o.max_reply_bytes = 1024;
        o.max_pending = 1;
        redis::client c(o);
        (void)co_await connected(c);
        auto big = co_await bounded(c.command("GET", "big"), "the big reply");
        CHECK(big.error() == redis::errc::reply_too_large);
        CHECK(big.error().message() == "a Redis reply larger than the client's limit");
        auto up = co_await bounded(c.wait_connected(), "the reconnection");
        REQUIRE(up.has_value());
        auto full = [](redis::client& c) -> task<void> {
            auto refused = co_await c.command("PING");
            CHECK(refused.error() == redis::errc::too_many_pending);
        };
        auto both = co_await when_all(c.command("BLPOP", "queue", 30), full(c), [](redis::client& w) -> task<void> {
            (void)co_await ok(w, "RPUSH", "queue", "x");
        }(writer));
        REQUIRE(std::get<0>(both).has_value());
        CHECK(std::get<0>(both)->elements.at(1).text == "x");
        co_await c.close();
        co_await writer.close();
    }(server));
}

TEST_CASE("a server that answers with bytes that are not RESP: protocol_error, not a crash") {
    auto listening = net::listen_socket(net::endpoint::tcp("127.0.0.1", 0));
    sync_wait([](int lfd) -> task<void> {
        auto fake = [](int lfd) -> task<void> {
            auto s = co_await net::accept(lfd);
            REQUIRE(s.has_value());
            std::string request(64, '\0');
            auto n = co_await s->read_some(request);
            REQUIRE(n.has_value());
            auto sent = co_await s->write(std::string_view("@not resp\r\n"));
            REQUIRE(sent.has_value());
            (void)co_await s->read_some(request);  // until the client hangs up
        };
        auto ep = net::local_endpoint(lfd);
        REQUIRE(ep.has_value());
        redis::client c(support::redis_options(*ep));
        (void)co_await connected(c);
        auto both = co_await bounded(when_all(c.command("PING"), fake(lfd)), "the bad reply");
        CHECK(std::get<0>(both).error() == redis::errc::protocol_error);
        co_await c.close();
    }(listening.get()));
}

TEST_CASE("a command leaves at the end of its turn, ahead of the end-of-turn writes queued after it") {
    // Regression: the command went through the ring, after every other end-of-turn write of
    // its turn: a chat worker's PUBLISH waited for its frames to a hundred WebSockets.
    auto listening = net::listen_socket(net::endpoint::tcp("127.0.0.1", 0));
    sync_wait([](int lfd) -> task<void> {
        auto ep = net::local_endpoint(lfd);
        REQUIRE(ep.has_value());
        redis::client c(support::redis_options(*ep));
        (void)co_await connected(c);
        auto server_side = co_await net::accept(lfd);  // connected already
        REQUIRE(server_side.has_value());
        auto answer = [](net::tcp_stream& s) -> task<void> {
            auto sent = co_await s.write(std::string_view("+PONG\r\n"));
            REQUIRE(sent.has_value());
        };
        hook_reading after(server_side->native_handle());
        scope commands;
        commands.spawn([](redis::client& c) -> task<void> { (void)co_await ok(c, "PING"); }(c));
        io_context::current_or_throw().defer(&after);
        co_await bounded(answer(*server_side), "the answer");
        co_await commands.join();  // ok() bounds the wait for the PONG
        CHECK(after.got == "*1\r\n$4\r\nPING\r\n");
        co_await c.close();
    }(listening.get()));
}
