// cluster::websocket::socket: the server side of one WebSocket (RFC 6455) on a net::tcp_stream,
// framed by wslay's event API: awaitable receive, bounded sends, pings and the close handshake.
#pragma once

#include <cluster/io/io_context.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/tcp_stream.hpp>
#include <cluster/result.hpp>
#include <cluster/websocket/close_code.hpp>
#include <cluster/websocket/group.hpp>
#include <cluster/websocket/message.hpp>
#include <cluster/websocket/options.hpp>
#include <cluster/websocket/utf8.hpp>

#include <wslay/wslay.h>

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <new>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace cluster::websocket {

// One task receives (receive(), or close()); any task may send. Sends never wait for the
// peer: a message is queued, within max_send_queue_bytes, and written at the end of the loop's
// turn, or by the socket's own writer task when the kernel's buffer is full. The socket must
// outlive its tasks: receive() until it gives the close.
class socket : private group::member {
public:
    // `stream`: a connection whose opening handshake is done (accept_handshake);
    // `already_read`: the bytes read past it (http::upgraded::rest). A socket in a group is
    // closed with the others by group::close_all.
    socket(net::tcp_stream stream, std::span<const char> already_read, const options& o = {}, group* g = nullptr)
        : member(g), loop_(io::io_context::current_or_throw()), stream_(std::move(stream)), options_(o),
          in_(std::max(read_size, already_read.size())) {
        std::copy(already_read.begin(), already_read.end(), in_.begin());
        in_end_ = already_read.size();
        static const wslay_event_callbacks callbacks{on_recv, on_send, nullptr, nullptr, nullptr, nullptr, on_message};
        if (wslay_event_context_server_init(&ctx_, &callbacks, this) != 0) throw std::bad_alloc();
        wslay_event_config_set_max_recv_msg_length(ctx_, options_.max_message_bytes);
        join_group();
    }
    socket(const socket&) = delete;  // wslay and the writer point at it
    socket& operator=(const socket&) = delete;
    ~socket() {
        if (flush_scheduled_) loop_.cancel_defer(&flush_hook_);
        wslay_event_context_free(ctx_);
    }

    // The next whole message; or the close that ended the connection, after which the
    // socket is done (every later call gives the same close).
    io::task<message> receive() {
        receiving_ = true;
        for (;;) {
            if (!ready_.empty()) {
                message m = std::move(ready_.front());
                ready_.pop_front();
                receiving_ = false;
                co_return m;
            }
            if (done_) {
                receiving_ = false;
                co_return closed();
            }
            if (!wslay_event_want_read(ctx_) || broken_) {
                co_await finish();
                continue;
            }
            if (in_pos_ < in_end_) {
                feed();
                continue;
            }
            co_await read_more();
        }
    }

    io::task<result<void>> send_text(std::string_view text) { co_return queue(WSLAY_TEXT_FRAME, text); }
    io::task<result<void>> send_binary(std::string_view bytes) { co_return queue(WSLAY_BINARY_FRAME, bytes); }

    // Sends a close frame, then waits for the peer's (or close_timeout), dropping the
    // messages that come meanwhile. While another task is in receive(), it returns once
    // the frame is queued, and that receive() gives the close.
    io::task<void> close(close_code code = close_code::normal, std::string_view reason = {}) {
        begin_close(code, reason);
        if (receiving_) co_return;
        while (!done_) (void)co_await receive();
    }

    // Starts the close handshake from anywhere, a stop callback included.
    void begin_close(close_code code, std::string_view reason) noexcept override {
        if (close_begun_ || done_) return;
        close_begun_ = true;
        code_ = code;
        reason_ = reason.substr(0, 123);
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(reason.data());
        (void)wslay_event_queue_close(ctx_, static_cast<std::uint16_t>(code), bytes,
                                      std::min<std::size_t>(reason.size(), 123));
        kick();
        wake_.request_stop();  // the reader's wait now has close_timeout
    }

    // Bytes queued and not yet handed to the kernel.
    [[nodiscard]] std::size_t queued_bytes() const noexcept {
        return wslay_event_get_queued_msg_length(ctx_) + (out_.size() - out_pos_);
    }

private:
    static constexpr std::size_t read_size = 16 * 1024;
    // wslay's bytes gathered for one write; past this it keeps them queued.
    static constexpr std::size_t write_chunk = 64 * 1024;

    static socket& of(void* user) noexcept { return *static_cast<socket*>(user); }

    static ssize_t on_recv(wslay_event_context_ptr ctx, std::uint8_t* buf, std::size_t len, int, void* user) noexcept {
        auto& s = of(user);
        const std::size_t n = std::min(len, s.in_end_ - s.in_pos_);
        if (n == 0) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        std::copy_n(s.in_.data() + s.in_pos_, n, buf);
        s.in_pos_ += n;
        return static_cast<ssize_t>(n);
    }

    static ssize_t on_send(wslay_event_context_ptr ctx, const std::uint8_t* data, std::size_t len, int,
                           void* user) noexcept {
        auto& s = of(user);
        if (s.out_.size() - s.out_pos_ >= write_chunk) {
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        s.out_.append(reinterpret_cast<const char*>(data), len);
        return static_cast<ssize_t>(len);
    }

    static void on_message(wslay_event_context_ptr, const wslay_event_on_msg_recv_arg* arg, void* user) noexcept {
        auto& s = of(user);
        const std::string_view payload(reinterpret_cast<const char*>(arg->msg), arg->msg_length);
        if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
            if (!s.close_begun_) {
                s.close_begun_ = true;
                s.code_ = arg->status_code == 0 ? close_code::no_status : static_cast<close_code>(arg->status_code);
                s.reason_ = payload.size() > 2 ? payload.substr(2) : std::string_view();
            }
        } else if (arg->opcode == WSLAY_TEXT_FRAME && !valid_utf8(payload)) {
            // wslay leaves text unchecked: the whole message is, here.
            s.begin_close(close_code::invalid_payload, "invalid UTF-8");
        } else if ((arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME) && !s.close_begun_) {
            s.ready_.push_back(message{arg->opcode == WSLAY_TEXT_FRAME ? kind::text : kind::binary,
                                       std::string(payload), close_code::normal});
        }
    }

    // The bytes read go to wslay, which calls on_message, and queues pongs and close answers.
    void feed() {
        pinged_ = false;
        if (wslay_event_recv(ctx_) != 0) broken_ = true;
        pack();  // a close frame wslay queued counts as sent once packed
        kick();
        // A message too big, or a protocol error, that wslay closed for: its code is ours.
        if (!close_begun_ && wslay_event_get_close_sent(ctx_)) {
            close_begun_ = true;
            code_ = static_cast<close_code>(wslay_event_get_status_code_sent(ctx_));
        }
    }

    io::task<void> read_more() {
        const auto wait = close_begun_ ? options_.close_timeout : options_.ping_interval;
        auto n = co_await stream_.read_some(std::span(in_)).with_timeout(wait).with_stop_token(wake_.get_token());
        if (n && *n > 0) {
            in_pos_ = 0;
            in_end_ = *n;
        } else if (n) {
            broken_ = true;  // the peer left without a close frame
        } else if (n.error() == std::errc::operation_canceled && wake_.stop_requested()) {
            wake_ = std::stop_source();  // begin_close woke it: wait again, with close_timeout
        } else if (n.error() == std::errc::timed_out && !close_begun_ && !pinged_) {
            pinged_ = true;
            const wslay_event_msg ping{WSLAY_PING, nullptr, 0};
            (void)wslay_event_queue_msg(ctx_, &ping);
            kick();
        } else {
            broken_ = true;  // no answer to a ping or a close, or the connection failed
        }
    }

    // The last bytes written (a close frame's answer, say), then the connection ends.
    io::task<void> finish() {
        if (flush_scheduled_) {
            loop_.cancel_defer(&flush_hook_);
            flush_scheduled_ = false;
        }
        write_now();
        co_await writer_.join();
        done_ = true;
        if (!close_begun_) code_ = close_code::abnormal;
        (void)co_await stream_.shutdown(SHUT_RDWR);
    }

    [[nodiscard]] message closed() const { return message{kind::close, reason_, code_}; }

    result<void> queue(std::uint8_t opcode, std::string_view data) {
        if (close_begun_ || done_ || broken_) return std::make_error_code(std::errc::not_connected);
        if (queued_bytes() + data.size() > options_.max_send_queue_bytes) {
            begin_close(close_code::policy_violation, "send queue full: reader too slow");
            return std::make_error_code(std::errc::no_buffer_space);
        }
        const wslay_event_msg m{opcode, reinterpret_cast<const std::uint8_t*>(data.data()), data.size()};
        if (wslay_event_queue_msg(ctx_, &m) != 0) return std::make_error_code(std::errc::not_connected);
        kick();
        return {};
    }

    // Writes what is queued at the end of this turn of the loop, unless the writer is at it: a
    // frame to each of many sockets, or a pong and a message, leave in one send each.
    void kick() {
        if (writing_ || flush_scheduled_ || broken_ || (out_pos_ == out_.size() && !wslay_event_want_write(ctx_)))
            return;
        flush_scheduled_ = true;
        loop_.defer(&flush_hook_);
    }

    void on_flush(int, bool resume) {
        flush_scheduled_ = false;
        if (resume) write_now();
    }

    // wslay's frames into out_, unless the kernel is reading out_ (the writer's write).
    void pack() {
        if (!writing_ && wslay_event_want_write(ctx_)) (void)wslay_event_send(ctx_);
    }

    // Straight into the kernel's buffer, which has room in the common case: no op, no timer, no
    // task. What does not fit goes to the writer, through the ring and under write_timeout.
    void write_now() {
        while (!writing_ && !broken_) {
            pack();
            if (out_pos_ == out_.size()) return;
            const ssize_t n = ::send(stream_.native_handle(), out_.data() + out_pos_, out_.size() - out_pos_,
                                     MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                broken_ = true;
                wake_.request_stop();
                return;
            }
            if (n > 0) written(static_cast<std::size_t>(n));
            if (out_pos_ < out_.size()) {
                writing_ = true;
                writer_.spawn(write_queued(*this));
            }
        }
    }

    void written(std::size_t n) noexcept {
        out_pos_ += n;
        if (out_pos_ == out_.size()) {
            out_.clear();
            out_pos_ = 0;
        }
    }

    static io::task<void> write_queued(socket& s) {
        for (;;) {
            // Once its close frame is out, wslay sends no more; what it gave is written still.
            if (wslay_event_want_write(s.ctx_)) (void)wslay_event_send(s.ctx_);
            if (s.out_pos_ == s.out_.size()) break;
            const std::string_view rest = std::string_view(s.out_).substr(s.out_pos_);
            auto n = co_await s.stream_.write_some(rest).with_timeout(s.options_.write_timeout);
            if (!n) {
                s.broken_ = true;
                s.wake_.request_stop();
                break;
            }
            s.written(*n);
        }
        s.writing_ = false;
    }

    io::io_context& loop_;
    net::tcp_stream stream_;
    options options_;
    wslay_event_context_ptr ctx_ = nullptr;
    std::vector<char> in_;
    std::size_t in_pos_ = 0, in_end_ = 0;
    std::string out_;
    std::size_t out_pos_ = 0;
    std::deque<message> ready_;
    std::stop_source wake_;
    close_code code_ = close_code::abnormal;
    std::string reason_;
    bool close_begun_ = false;
    bool pinged_ = false;
    bool broken_ = false;
    bool writing_ = false;
    bool receiving_ = false;
    bool done_ = false;
    bool flush_scheduled_ = false;
    io::detail::member_completion<socket, &socket::on_flush> flush_hook_{this};
    io::scope writer_;  // last: destroyed first, its task using the rest
};

}  // namespace cluster::websocket
