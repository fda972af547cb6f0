// cluster::redis::detail::link: one connection to a Redis server kept up in the background —
// connect, AUTH and SELECT, batched writes, replies read in order, reconnect with backoff.
#pragma once

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <cluster/io/io_context.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/when_all.hpp>
#include <cluster/net/tcp_stream.hpp>
#include <cluster/redis/detail/format_command.hpp>
#include <cluster/redis/detail/resp_reader.hpp>
#include <cluster/redis/error.hpp>
#include <cluster/redis/options.hpp>
#include <cluster/redis/reply.hpp>
#include <cluster/result.hpp>

namespace cluster::redis::detail {

// What the link's owner (a client, a subscriber) is told.
class link_events {
public:
    // A reply on the live link; an error drops the link (a reply nobody asked for, say).
    virtual std::error_code on_reply(reply r) = 0;
    // The link is up, logged in and selected: commands may be sent.
    virtual void on_link_up() = 0;
    // The link went down for `why`: what was in flight will never be answered.
    virtual void on_link_down(std::error_code why) = 0;

protected:
    ~link_events() = default;
};

class link {
public:
    link(options o, link_events& events)
        : options_(std::move(o)), events_(events), read_buffer_(64 * 1024), attempt_(std::make_shared<io::latch>()) {}
    link(const link&) = delete;
    link& operator=(const link&) = delete;
    ~link() {
        if (flushing_) flushing_->cancel_defer(&flush_hook_);
    }

    [[nodiscard]] bool connected() const noexcept { return connected_; }
    [[nodiscard]] bool closed() const noexcept { return closed_; }
    [[nodiscard]] const options& settings() const noexcept { return options_; }
    // What the server said when it refused the last handshake (AUTH, SELECT).
    [[nodiscard]] const std::string& last_refusal() const noexcept { return last_refusal_; }

    // Starts keeping the link up and waits for the first attempt: its failure is returned,
    // and the link goes on trying, with backoff, until close().
    task<result<void>> connect() {
        if (closed_) co_return errc::closed;
        if (connected_) co_return result<void>{};
        auto attempt = attempt_;
        start();
        const bool done = co_await attempt->wait();
        if (!done) co_return std::make_error_code(std::errc::operation_canceled);
        if (closed_) co_return errc::closed;
        if (last_attempt_) co_return last_attempt_;
        co_return result<void>{};
    }

    // Waits until the link is up (starting it if need be).
    task<result<void>> wait_connected() {
        for (;;) {
            if (closed_) co_return errc::closed;
            if (connected_) co_return result<void>{};
            auto attempt = attempt_;
            start();
            const bool done = co_await attempt->wait();
            if (!done) co_return std::make_error_code(std::errc::operation_canceled);
        }
    }

    task<void> close() {
        closed_ = true;
        scope_.request_stop();
        co_await scope_.join();
        wake_attempt_waiters({});
    }

    // Queues RESP bytes. Everything queued in a turn of the loop leaves at its end in one send,
    // straight into the kernel's buffer, in turn with the loop's other end-of-turn writes (a
    // worker's channel, its WebSockets): a command queued before a hundred WebSocket frames does
    // not wait behind them. What the buffer has no room for goes through the writer.
    void send(std::string_view bytes) {
        outbox_.append(bytes);
        if (writing_ || flushing_) return;
        flushing_ = &io::io_context::current_or_throw();
        flushing_->defer(&flush_hook_);
    }

private:
    void start() {
        if (started_ || closed_) return;
        started_ = true;
        scope_.spawn(supervise());
    }

    void wake_attempt_waiters(std::error_code outcome) {
        last_attempt_ = outcome;
        std::exchange(attempt_, std::make_shared<io::latch>())->set();
    }

    task<void> supervise() {
        auto backoff = options_.backoff_min;
        const auto token = co_await io::current_stop_token();
        while (!token.stop_requested()) {
            auto opened = co_await io::with_timeout(open(), options_.connect_timeout);
            if (!opened) {
                wake_attempt_waiters(opened.error());
                (void)co_await io::sleep_for(backoff);
                backoff = std::min(backoff * 2, options_.backoff_max);
                continue;
            }
            stream_ = std::move(*opened);
            backoff = options_.backoff_min;
            connected_ = true;
            events_.on_link_up();
            wake_attempt_waiters({});
            const std::error_code why = co_await run();
            connected_ = false;
            writing_ = false;
            outbox_.clear();
            stream_ = net::tcp_stream{};
            events_.on_link_down(closed_ ? make_error_code(errc::closed) : why);
            if (!token.stop_requested()) (void)co_await io::sleep_for(backoff);
        }
    }

    // Connects, then logs in and selects the database, reading those replies here.
    task<result<net::tcp_stream>> open() {
        auto connected = co_await net::connect(options_.server);
        if (!connected) co_return connected.error();
        if (!options_.server.is_unix()) (void)connected->set_nodelay();
        reader_.emplace(options_.max_reply_bytes);
        std::string hello;
        int expected = 0;
        if (!options_.password.empty()) {
            hello += (options_.user.empty() ? format_command("AUTH", options_.password)
                                            : format_command("AUTH", options_.user, options_.password))
                         .value();
            ++expected;
        }
        if (options_.database != 0) {
            hello += format_command("SELECT", options_.database).value();
            ++expected;
        }
        if (expected == 0) co_return std::move(*connected);
        auto sent = co_await connected->write(hello);
        if (!sent) co_return sent.error();
        for (int i = 0; i < expected; ++i) {
            auto answer = co_await read_reply(*connected);
            if (!answer) co_return answer.error();
            if (answer->is_error()) {
                last_refusal_ = answer->text;
                co_return errc::handshake_failed;
            }
        }
        co_return std::move(*connected);
    }

    task<result<reply>> read_reply(net::tcp_stream& stream) {
        for (;;) {
            auto parsed = reader_->next();
            if (!parsed) co_return parsed.error();
            if (*parsed) co_return std::move(**parsed);
            auto fed = co_await receive(stream);
            if (!fed) co_return fed.error();
        }
    }

    task<result<void>> receive(net::tcp_stream& stream) {
        auto n = co_await stream.read_some(read_buffer_);
        if (!n) co_return n.error();
        if (*n == 0) co_return errc::connection_lost;
        co_return reader_->feed(std::span(read_buffer_).first(*n));
    }

    // Reads and writes until either fails; the other is then stopped.
    task<std::error_code> run() {
        auto first = co_await io::when_any(read_loop(), write_loop());
        co_return first.index() == 0 ? std::get<0>(first) : std::get<1>(first);
    }

    task<std::error_code> read_loop() {
        for (;;) {
            auto r = co_await read_reply(stream_);
            if (!r) co_return r.error();
            if (auto refused = events_.on_reply(std::move(*r))) co_return refused;
        }
    }

    void on_flush(int, bool resume) {
        flushing_ = nullptr;
        if (resume && connected_ && !writing_) write_now();
    }

    void write_now() {
        if (outbox_.empty()) return;
        const ssize_t n = ::send(stream_.native_handle(), outbox_.data(), outbox_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n == static_cast<ssize_t>(outbox_.size())) return outbox_.clear();
        if (n > 0) outbox_.erase(0, static_cast<std::size_t>(n));
        // A full buffer, or a broken connection, whose write then fails as its read does.
        writing_ = true;
        wake_writer_.push(true);
    }

    // What write_now() could not send, through the ring, with whatever is queued meanwhile.
    task<std::error_code> write_loop() {
        std::string sending;
        for (;;) {
            if (outbox_.empty()) {
                writing_ = false;
                auto woken = co_await wake_writer_.take();
                if (!woken) co_return std::make_error_code(std::errc::operation_canceled);
                continue;
            }
            sending.swap(outbox_);
            auto sent = co_await stream_.write(sending);
            if (!sent) co_return sent.error();
            sending.clear();
        }
    }

    options options_;
    link_events& events_;
    std::vector<std::byte> read_buffer_;
    std::optional<resp_reader> reader_;
    net::tcp_stream stream_;
    std::string outbox_;
    io::mailbox<bool> wake_writer_;
    bool writing_ = false;                // the writer has bytes to send: send() leaves them to it
    io::io_context* flushing_ = nullptr;  // where flush_hook_ waits for the end of the turn
    io::detail::member_completion<link, &link::on_flush> flush_hook_{this};
    std::shared_ptr<io::latch> attempt_;
    std::error_code last_attempt_;
    std::string last_refusal_;
    bool started_ = false;
    bool connected_ = false;
    bool closed_ = false;
    io::scope scope_;  // last: destroyed first, while everything its task uses is still here
};

}  // namespace cluster::redis::detail
