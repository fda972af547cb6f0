// cluster::redis::client: commands to one Redis server from any number of tasks at once,
// pipelined on one connection and answered in order; kept connected across restarts.
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <cluster/io/latch.hpp>
#include <cluster/io/task.hpp>
#include <cluster/redis/detail/format_command.hpp>
#include <cluster/redis/detail/link.hpp>
#include <cluster/redis/error.hpp>
#include <cluster/redis/options.hpp>
#include <cluster/redis/reply.hpp>
#include <cluster/result.hpp>

namespace cluster::redis {

class client final : private detail::link_events {
public:
    explicit client(options o = {}) : link_(std::move(o), *this) {}
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    // Commands still waiting get errc::closed. close() first to stop the connection cleanly.
    ~client() { fail_all(errc::closed, errc::closed); }

    // The first connection attempt's outcome; the client keeps trying after a failure (and
    // reconnects after a drop) until close().
    [[nodiscard]] task<result<void>> connect() { return link_.connect(); }
    // Until the connection is up: after a failed connect() or a drop.
    [[nodiscard]] task<result<void>> wait_connected() { return link_.wait_connected(); }
    [[nodiscard]] task<void> close() { return link_.close(); }

    [[nodiscard]] bool connected() const noexcept { return link_.connected(); }
    // Commands sent and not yet answered (cancelled ones included: their replies are still due).
    [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_.size(); }
    [[nodiscard]] const std::string& last_refusal() const noexcept { return link_.last_refusal(); }

    // co_await c.command("SET", key, value): the server's reply, an error reply included.
    // Strings and integers are arguments; they are copied before this returns. It fails with
    // errc::not_connected, too_many_pending, connection_lost (never retried), reply_too_large,
    // protocol_error or closed; answers the awaiting task's stop token (operation_canceled;
    // the reply is still read and dropped), so io::with_timeout(c.command(...), d) bounds it.
    template <class... Args>
    [[nodiscard]] task<result<reply>> command(const Args&... args) {
        return submit(detail::format_command(args...));
    }
    [[nodiscard]] task<result<reply>> command_argv(std::span<const std::string_view> args) {
        return submit(detail::format_argv(args));
    }

private:
    // One command awaiting its reply, in the awaiting task's frame.
    struct pending {
        client* owner;
        bool queued = true;
        std::optional<result<reply>> outcome;
        io::latch answered;
        explicit pending(client* c) noexcept : owner(c) {}
        pending(const pending&) = delete;
        pending& operator=(const pending&) = delete;
        // Gone before its reply (cancelled, or its task destroyed): the reply is dropped.
        ~pending() {
            if (queued)
                std::replace(owner->in_flight_.begin(), owner->in_flight_.end(), this, static_cast<pending*>(nullptr));
        }
        void settle(result<reply> r) {
            queued = false;
            outcome.emplace(std::move(r));
            answered.set();
        }
    };

    task<result<reply>> submit(result<std::string> formatted) {
        if (!formatted) co_return formatted.error();
        if (link_.closed()) co_return errc::closed;
        if (!link_.connected()) co_return errc::not_connected;
        if (in_flight_.size() >= link_.settings().max_pending) co_return errc::too_many_pending;
        pending p(this);
        in_flight_.push_back(&p);
        link_.send(*formatted);
        const bool answered = co_await p.answered.wait();
        if (!answered) co_return std::make_error_code(std::errc::operation_canceled);
        co_return std::move(*p.outcome);
    }

    std::error_code on_reply(reply r) override {
        if (in_flight_.empty()) return errc::protocol_error;  // a reply nobody asked for
        pending* p = in_flight_.front();
        in_flight_.pop_front();
        if (p) p->settle(std::move(r));
        return {};
    }

    void on_link_up() override {}

    // The reply being read when the input went bad gets that error; the rest were merely lost.
    void on_link_down(std::error_code why) override {
        const bool input_at_fault = why == errc::reply_too_large || why == errc::protocol_error;
        fail_all(input_at_fault ? why : make_error_code(errc::connection_lost),
                 why == errc::closed ? why : make_error_code(errc::connection_lost));
    }

    void fail_all(std::error_code first, std::error_code rest) {
        auto lost = std::exchange(in_flight_, {});
        for (pending* p : lost) {
            if (p) p->settle(std::exchange(first, rest));
        }
    }

    std::deque<pending*> in_flight_;
    detail::link link_;  // last: its background task is stopped before the queue above goes
};

}  // namespace cluster::redis
