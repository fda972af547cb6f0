// Cancellation through std::stop_token: pending ops, tokens stopped before submission,
// stop racing completion, tokens inherited down a chain of tasks, and explicit tokens
// on tasks and ops.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>

#include "support/descriptors.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <stop_token>
#include <string>
#include <vector>

using namespace cluster;

namespace {

using support::make_socketpair;

// Reads once; the error code, or success.
task<std::error_code> read_once(int fd) {
    char buf[16];
    auto r = co_await io::read(fd, buf);
    co_return r ? std::error_code{} : r.error();
}

task<std::error_code> read_once_with(int fd, std::stop_token token) {
    char buf[16];
    auto r = co_await io::read(fd, buf).with_stop_token(std::move(token));
    co_return r ? std::error_code{} : r.error();
}

task<std::error_code> level2(int fd) { co_return co_await read_once(fd); }
task<std::error_code> level1(int fd) { co_return co_await level2(fd); }

task<void> stop_after_a_turn(std::stop_source& s) {
    (void)co_await io::nop();
    (void)co_await io::nop();
    s.request_stop();
}

// A read under a token of its own, whose source is stopped once the read waits: how it ended.
task<std::error_code> read_stopped_after_a_turn(int fd) {
    std::stop_source own;
    auto [ec, done] = co_await when_all(read_once_with(fd, own.get_token()), stop_after_a_turn(own));
    (void)done;
    co_return ec;
}

}  // namespace

TEST_CASE("stop requested while a read is pending: ECANCELED") {
    auto sp = make_socketpair();
    auto body = [](int fd) -> task<void> {
        const auto ec = co_await read_stopped_after_a_turn(fd);
        CHECK(ec == std::errc::operation_canceled);
    };
    sync_wait(body(sp[0].get()));
    // The cancelled read took nothing: the next byte is still there for whoever reads.
    REQUIRE(::write(sp[1].get(), "z", 1) == 1);
    char c = 0;
    CHECK(::recv(sp[0].get(), &c, 1, MSG_DONTWAIT) == 1);
    CHECK(c == 'z');
}

TEST_CASE("a token already stopped fails the op at once, without submitting it") {
    io_context ctx;
    auto sp = make_socketpair();
    REQUIRE(::write(sp[1].get(), "data", 4) == 4);  // a submitted read would succeed at once
    std::stop_source stop;
    stop.request_stop();
    auto body = [](io_context& c, int fd, std::stop_token t) -> task<void> {
        const auto before = c.in_flight();
        char buf[8];
        auto r = co_await io::read(fd, buf).with_stop_token(t);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::operation_canceled);
        CHECK(c.in_flight() == before);
        auto s = co_await io::sleep_for(std::chrono::hours(1)).with_stop_token(t);
        REQUIRE_FALSE(s.has_value());
        CHECK(s.error() == std::errc::operation_canceled);
    };
    ctx.run_until(body(ctx, sp[0].get(), stop.get_token()));
    char buf[8];
    CHECK(::recv(sp[0].get(), buf, sizeof buf, MSG_DONTWAIT) == 4);  // untouched
}

TEST_CASE("stop racing completion: every byte is read exactly once, nothing hangs") {
    // Each round: a reader is pending (or about to be submitted), then in one loop turn
    // the peer writes a byte and the reader's token is stopped. The read ends with the
    // byte or with ECANCELED; a cancelled byte stays in the socket for a later round.
    io_context ctx;
    auto sp = make_socketpair();
    constexpr int rounds = 600;
    struct outcome {
        int data = 0, cancelled = 0;
        std::vector<unsigned char> got;
    } out;
    auto reader = [](int fd, outcome& o) -> task<void> {
        unsigned char buf[rounds];
        auto r = co_await io::read(fd, std::span(buf, sizeof buf));
        if (r) {
            o.data += 1;
            o.got.insert(o.got.end(), buf, buf + *r);
        } else {
            REQUIRE(r.error() == std::errc::operation_canceled);
            o.cancelled += 1;
        }
    };
    auto body = [](decltype(reader)& rd, int fd, int peer, outcome& o) -> task<void> {
        for (int i = 0; i < rounds; ++i) {
            scope s;
            s.spawn(rd(fd, o));
            for (int k = 0; k < i % 3; ++k) (void)co_await io::nop();  // vary how far the read got
            const auto byte = static_cast<unsigned char>(i % 251);
            if (i % 2) {
                REQUIRE(::write(peer, &byte, 1) == 1);
                s.request_stop();
            } else {
                s.request_stop();
                REQUIRE(::write(peer, &byte, 1) == 1);
            }
            co_await s.join();
        }
        // Whatever a cancelled read left behind is still there, in order.
        unsigned char rest[rounds];
        ssize_t n = ::recv(fd, rest, sizeof rest, MSG_DONTWAIT);
        if (n > 0) o.got.insert(o.got.end(), rest, rest + n);
    };
    ctx.run_until(body(reader, sp[0].get(), sp[1].get(), out));
    INFO("reads with data: " << out.data << ", cancelled: " << out.cancelled);
    CHECK(out.data + out.cancelled == rounds);
    REQUIRE(out.got.size() == rounds);
    for (int i = 0; i < rounds; ++i) REQUIRE(out.got[i] == static_cast<unsigned char>(i % 251));
    CHECK(ctx.in_flight() == 0);
}

TEST_CASE("a task inherits the stop token of the task awaiting it") {
    auto sp = make_socketpair();
    io_context ctx;
    std::stop_source stop;
    scope outside;  // not under `stop`: its task pulls the trigger
    outside.spawn(stop_after_a_turn(stop));
    // level1 → level2 → read_once: none is given a token, all answer to `stop`.
    auto ec = ctx.run_until(level1(sp[0].get()).with_stop_token(stop.get_token()));
    CHECK(ec == std::errc::operation_canceled);
    CHECK(outside.size() == 0);
}

TEST_CASE("a task keeps the token given with with_stop_token when moved") {
    // Regression: moving a task lost the fact that its token was fixed, so the token of
    // the task awaiting it replaced the one it was given.
    auto sp = make_socketpair();
    auto body = [](int fd, int peer) -> task<std::error_code> {
        std::stop_source stop;
        auto stop_then_write = [](std::stop_source& s, int p) -> task<void> {
            (void)co_await io::nop();
            (void)co_await io::nop();
            s.request_stop();
            (void)co_await io::nop();
            // Were the read not cancelled, this would complete it (no hang, a failure).
            (void)co_await io::write(p, std::string_view("late"));
        };
        task<std::error_code> t = level1(fd).with_stop_token(stop.get_token());
        task<std::error_code> moved = std::move(t);
        task<std::error_code> assigned;
        assigned = std::move(moved);
        auto wrapped = [](task<std::error_code> inner) -> task<std::error_code> {
            co_return co_await std::move(inner);
        };
        auto [ec, done] = co_await when_all(wrapped(std::move(assigned)), stop_then_write(stop, peer));
        (void)done;
        co_return ec;
    };
    CHECK(sync_wait(body(sp[0].get(), sp[1].get())) == std::errc::operation_canceled);
}

TEST_CASE("task::with_stop_token: a task answers to its own token, not its awaiter's") {
    auto sp = make_socketpair();
    io_context ctx;
    REQUIRE(::write(sp[1].get(), "ok", 2) == 2);  // a read that is not cancelled succeeds at once
    std::stop_source stopped;
    stopped.request_stop();

    // Inheriting, the child is cancelled by its parent's stopped token...
    auto inherits = [](int fd) -> task<std::error_code> { co_return co_await read_once(fd); };
    CHECK(ctx.run_until(inherits(sp[0].get()).with_stop_token(stopped.get_token())) == std::errc::operation_canceled);

    // ...given a token of its own (never stopped), it is not.
    auto own_token = [](int fd) -> task<std::error_code> {
        std::stop_source never;
        co_return co_await read_once(fd).with_stop_token(never.get_token());
    };
    CHECK_FALSE(ctx.run_until(own_token(sp[0].get()).with_stop_token(stopped.get_token())));

    // And its own token, once stopped, cancels it while the parent's never is.
    std::stop_source own;
    scope outside;
    outside.spawn(stop_after_a_turn(own));
    auto parent = [](int fd, std::stop_token t) -> task<std::error_code> {
        co_return co_await read_once(fd).with_stop_token(std::move(t));
    };
    CHECK(ctx.run_until(parent(sp[0].get(), own.get_token())) == std::errc::operation_canceled);
}

TEST_CASE("op.with_stop_token: an op answers to its own token, not its task's") {
    auto sp = make_socketpair();
    // The op's own token, stopped, cancels it although the task's token never is; the
    // free function io::with_stop_token does the same.
    auto cancelled = [](int fd) -> task<void> {
        const auto ec = co_await read_stopped_after_a_turn(fd);
        CHECK(ec == std::errc::operation_canceled);

        std::stop_source own;
        own.request_stop();
        char buf[4];
        auto r = co_await io::with_stop_token(io::read(fd, buf), own.get_token());
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::operation_canceled);
    };
    sync_wait(cancelled(sp[0].get()));

    // The task's token stopped, the op's own token not: the op is not cancelled.
    auto survives = [](int fd, int peer) -> task<std::error_code> {
        std::stop_source never;
        REQUIRE(::write(peer, "y", 1) == 1);
        co_return co_await read_once_with(fd, never.get_token());
    };
    std::stop_source task_stop;
    task_stop.request_stop();
    io_context ctx;
    CHECK_FALSE(ctx.run_until(survives(sp[0].get(), sp[1].get()).with_stop_token(task_stop.get_token())));
    // Control: the same read without a token of its own is cancelled by the task's.
    REQUIRE(::write(sp[1].get(), "y", 1) == 1);
    CHECK(ctx.run_until(read_once(sp[0].get()).with_stop_token(task_stop.get_token())) ==
          std::errc::operation_canceled);
}
