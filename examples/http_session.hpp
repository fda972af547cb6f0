// http_session: a worker's HTTP/1.1 connections served — keep-alive, pipelining, bounded
// requests, timeouts and a graceful drain — parsed by llhttp (Node's own parser) in place.
#pragma once

#include <cluster/cluster.hpp>

#include <llhttp.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>

namespace http {

struct limits {
    // The request line and headers, counted as Node counts them (the bytes of the target,
    // names and values): a request above gets 431 and the connection closes. Node's
    // default (--max-http-header-size).
    std::size_t max_header_bytes = 16 * 1024;
    // A connection with no request in progress is closed after this long: Node's
    // server.keepAliveTimeout.
    std::chrono::milliseconds keep_alive_timeout{5000};
    // Once a request has begun, each read of the rest waits this long at most; and so does
    // each write of a response, for a client that does not read.
    std::chrono::milliseconds read_timeout{30000};
    // A client sending a byte now and then never lets a read wait read_timeout, and would
    // hold its connection (and the worker's memory) forever. So a request's head must be
    // whole this long after its first byte, and the whole request, body included, within
    // request_timeout; if not, the answer is 408 and the connection closes. Node's
    // server.headersTimeout and server.requestTimeout; 0: no such deadline.
    std::chrono::milliseconds header_timeout{60000};
    std::chrono::milliseconds request_timeout{300000};
};

// What a handler sees of a request.
struct request {
    llhttp_method_t method = HTTP_GET;
    // The target up to its query; empty if that is longer than max_path (no route is).
    std::string_view path;
};

inline constexpr std::size_t max_path = 128;

// The status line and headers, in the one format every response here has.
inline void append_head(std::string& out, std::string_view status, std::string_view content_type, std::size_t body_size,
                        bool keep_alive, std::string_view extra_headers = {}) {
    std::array<char, 24> length;
    const auto digits = std::to_chars(length.data(), length.data() + length.size(), body_size).ptr;
    out.append("HTTP/1.1 ").append(status);
    out.append("\r\nContent-Type: ").append(content_type);
    out.append("\r\nContent-Length: ").append(length.data(), digits);
    out.append(keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n");
    out.append(extra_headers).append("\r\n");
}

// A response whose bytes never change, formatted once in both forms a connection needs:
// answering it is one copy.
class prepared_response {
public:
    // `extra_headers`: whole lines, each ending in \r\n.
    prepared_response(std::string_view status, std::string_view content_type, std::string_view body,
                      std::string_view extra_headers = {})
        : keep_alive_(format(status, content_type, body, true, extra_headers)),
          close_(format(status, content_type, body, false, extra_headers)), body_size_(body.size()) {}

    // Without its body, for HEAD.
    [[nodiscard]] std::string_view bytes(bool keep_alive, bool with_body) const noexcept {
        const std::string_view all = keep_alive ? keep_alive_ : close_;
        return with_body ? all : all.substr(0, all.size() - body_size_);
    }

private:
    static std::string format(std::string_view status, std::string_view content_type, std::string_view body,
                              bool keep_alive, std::string_view extra_headers) {
        std::string out;
        append_head(out, status, content_type, body.size(), keep_alive, extra_headers);
        return out.append(body);
    }

    std::string keep_alive_, close_;
    std::size_t body_size_;
};

// Where a handler answers, once per request: it appends to the connection's output, which
// leaves with the answers to the other requests of the same read.
class response {
public:
    response(std::string& out, bool keep_alive, bool head) noexcept : out_(out), keep_alive_(keep_alive), head_(head) {}

    void send(const prepared_response& r) { out_.append(r.bytes(keep_alive_, !head_)); }

    void send(std::string_view status, std::string_view content_type, std::string_view body) {
        append_head(out_, status, content_type, body.size(), keep_alive_);
        if (!head_) out_.append(body);
    }

private:
    std::string& out_;
    bool keep_alive_;
    bool head_;
};

inline const prepared_response& bad_request() {
    static const prepared_response r("400 Bad Request", "text/plain", "Bad Request\n");
    return r;
}

inline const prepared_response& request_timeout() {
    static const prepared_response r("408 Request Timeout", "text/plain", "Request Timeout\n");
    return r;
}

inline const prepared_response& header_too_large() {
    static const prepared_response r("431 Request Header Fields Too Large", "text/plain",
                                     "Request Header Fields Too Large\n");
    return r;
}

// What a connection waits for. Draining closes a connection at rest (see watchdog), but
// waits for the first request of a new one: it may be on its way already. The rest of a
// request is its head or its body: only the head has header_timeout.
enum class waiting { first_request, at_rest, rest_of_head, rest_of_body, client_to_read };

// The parser's side of a connection: feed it what was read, and the answers to every
// request completed in it are in output(), in order. It holds no request bytes: only the
// path, up to max_path, so a client cannot make it grow.
// Handler: void(const request&, response&), which must not throw: it runs inside llhttp.
template <class Handler>
class connection {
public:
    // `drain` requested: each request from then on is answered with Connection: close.
    connection(Handler& handler, const limits& l, std::stop_token drain)
        : handler_(handler), limits_(l), drain_(std::move(drain)) {
        llhttp_init(&parser_, HTTP_REQUEST, &settings);
        parser_.data = this;
    }
    connection(const connection&) = delete;  // the parser points back at it
    connection& operator=(const connection&) = delete;

    void feed(std::span<const char> bytes) {
        const auto err = llhttp_execute(&parser_, bytes.data(), bytes.size());
        if (err == HPE_OK) return;
        closing_ = true;
        // Paused by on_message_complete: that request was the last. Bytes after it, or
        // after a bad request, are left unread.
        unread_ = err != HPE_PAUSED || llhttp_get_error_pos(&parser_) != bytes.data() + bytes.size();
        if (err == HPE_PAUSED) return;
        response(out_, false, false).send(too_large_ ? header_too_large() : bad_request());
    }

    // The request was too slow to arrive: it is answered 408, and the connection closes.
    void time_out() {
        closing_ = true;
        unread_ = true;  // the client may still be sending it
        response(out_, false, false).send(request_timeout());
    }

    [[nodiscard]] waiting next() const noexcept {
        if (in_request_) return in_head_ ? waiting::rest_of_head : waiting::rest_of_body;
        return answered_ ? waiting::at_rest : waiting::first_request;
    }
    // How many requests have begun: the watchdog's cue that a request's deadlines start.
    [[nodiscard]] std::uint64_t requests_begun() const noexcept { return begun_; }
    // Once output() is sent, the connection closes.
    [[nodiscard]] bool closing() const noexcept { return closing_; }
    // Closing, with bytes of the client's left unread.
    [[nodiscard]] bool left_unread() const noexcept { return unread_; }
    [[nodiscard]] std::string& output() noexcept { return out_; }

private:
    static connection& of(llhttp_t* p) noexcept { return *static_cast<connection*>(p->data); }

    static int on_message_begin(llhttp_t* p) noexcept {
        auto& c = of(p);
        ++c.begun_;
        c.in_request_ = true;
        c.in_head_ = true;
        c.path_size_ = 0;
        c.header_bytes_ = 0;
        return 0;
    }

    static int on_url(llhttp_t* p, const char* at, std::size_t n) noexcept {
        auto& c = of(p);
        // One past max_path marks a path too long to keep.
        const std::size_t room = max_path + 1 - c.path_size_;
        const std::size_t kept = n < room ? n : room;
        std::copy_n(at, kept, c.path_.data() + c.path_size_);
        c.path_size_ += kept;
        return count_header_bytes(p, n);
    }

    static int count_header_bytes(llhttp_t* p, std::size_t n) noexcept {
        auto& c = of(p);
        c.header_bytes_ += n;
        if (c.header_bytes_ <= c.limits_.max_header_bytes) return 0;
        c.too_large_ = true;
        return -1;
    }

    static int on_message_complete(llhttp_t* p) noexcept {
        auto& c = of(p);
        c.in_request_ = false;
        c.answered_ = true;
        // An upgrade (WebSocket, h2c) or CONNECT is not served: its answer ends the connection.
        const bool keep_alive = llhttp_should_keep_alive(p) && !llhttp_get_upgrade(p) && !c.drain_.stop_requested();
        const auto method = static_cast<llhttp_method_t>(llhttp_get_method(p));
        response r(c.out_, keep_alive, method == HTTP_HEAD);
        c.handler_(request{method, c.path()}, r);
        return keep_alive ? 0 : HPE_PAUSED;
    }

    [[nodiscard]] std::string_view path() const noexcept {
        const std::string_view target(path_.data(), path_size_);
        const auto query = target.find('?');
        if (query != std::string_view::npos) return target.substr(0, query);
        return path_size_ > max_path ? std::string_view() : target;
    }

    static llhttp_settings_t make_settings() noexcept {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_header_field = [](llhttp_t* p, const char*, std::size_t n) { return count_header_bytes(p, n); };
        s.on_header_value = [](llhttp_t* p, const char*, std::size_t n) { return count_header_bytes(p, n); };
        s.on_headers_complete = [](llhttp_t* p) {
            of(p).in_head_ = false;
            return 0;
        };
        s.on_message_complete = on_message_complete;
        return s;
    }
    // A body is parsed and dropped: no on_body.
    static inline const llhttp_settings_t settings = make_settings();

    llhttp_t parser_;
    Handler& handler_;
    const limits& limits_;
    std::stop_token drain_;
    std::string out_;
    std::array<char, max_path + 1> path_;
    std::size_t path_size_ = 0;
    std::size_t header_bytes_ = 0;
    std::uint64_t begun_ = 0;
    bool in_request_ = false;
    bool in_head_ = false;
    bool answered_ = false;
    bool too_large_ = false;
    bool closing_ = false;
    bool unread_ = false;
};

// Deadlines for all the connections of a server, from one timer. A linked timeout on
// every read costs a tenth of the throughput; instead each connection notes when its read
// began, in ticks of a coarse clock, and on each tick the watchdog cancels the reads that
// have waited too long: read_timeout inside a request, keep_alive_timeout for the next one.
// Writes, likewise, get read_timeout. Each connection also notes the tick its request
// began, so the same tick cancels a read of a request past header_timeout or
// request_timeout, however recently its last byte came; that connection answers 408.
//
// Draining closes the connections at rest, but a client may be sending its next request
// on one at that very moment, and would lose it. So only those at rest for a whole tick
// are closed; a busy one gets its next request answered with Connection: close instead.
class watchdog {
public:
    static constexpr std::chrono::milliseconds tick{250};

    // One connection's registration, for as long as it lives.
    class watch {
    public:
        explicit watch(watchdog& dog) noexcept : dog_(dog) { dog_.link(*this); }
        watch(const watch&) = delete;
        watch& operator=(const watch&) = delete;
        ~watch() { dog_.unlink(*this); }

        // Call before each read or write, with the connection's requests_begun(); it
        // answers the token returned.
        [[nodiscard]] std::stop_token begin(waiting what, std::uint64_t requests_begun) {
            since_ = dog_.now_;
            waiting_ = what;
            // The request began in the bytes just read, so within this tick.
            if (requests_begun != request_) {
                request_ = requests_begun;
                request_since_ = dog_.now_;
            }
            return cancel_.get_token();
        }

        // Whether the token was cancelled because the request took too long, not a read:
        // then the client is owed a 408, and the watch is armed again to send it.
        [[nodiscard]] bool request_timed_out() {
            if (!overdue_) return false;
            overdue_ = false;
            cancel_ = std::stop_source();
            return true;
        }

    private:
        friend class watchdog;
        watchdog& dog_;
        watch* prev_ = nullptr;
        watch* next_ = nullptr;
        std::stop_source cancel_;
        std::uint64_t since_ = 0;
        std::uint64_t request_ = 0;
        std::uint64_t request_since_ = 0;
        waiting waiting_ = waiting::first_request;
        bool overdue_ = false;
    };

    watchdog(const limits& l, std::stop_token drain)
        : keep_alive_ticks_(ticks(l.keep_alive_timeout)), read_ticks_(ticks(l.read_timeout)),
          header_ticks_(deadline_ticks(l.header_timeout)), request_ticks_(deadline_ticks(l.request_timeout)),
          drain_(std::move(drain)) {
        on_drain_.emplace(drain_, drain_callback{this});
    }
    watchdog(const watchdog&) = delete;  // the callback and the watches point at it
    watchdog& operator=(const watchdog&) = delete;

    // The clock: runs until its task is asked to stop.
    static cluster::task<void> run(watchdog& self) {
        for (;;) {
            auto slept = co_await cluster::io::sleep_for(tick);
            if (!slept) co_return;
            ++self.now_;
            self.cancel_expired();
        }
    }

private:
    struct drain_callback {
        watchdog* self;
        void operator()() const noexcept { self->cancel_expired(); }
    };

    static std::uint64_t ticks(std::chrono::milliseconds d) noexcept {
        return static_cast<std::uint64_t>((d + tick - std::chrono::milliseconds(1)) / tick);
    }
    // As Node's: 0 turns the deadline off.
    static std::uint64_t deadline_ticks(std::chrono::milliseconds d) noexcept {
        return d.count() > 0 ? ticks(d) : std::numeric_limits<std::uint64_t>::max();
    }

    [[nodiscard]] bool expired(const watch& w) const noexcept {
        // Two ticks of the clock: a whole tick of time at least.
        const std::uint64_t waited = now_ - w.since_;
        if (w.waiting_ == waiting::rest_of_head || w.waiting_ == waiting::rest_of_body ||
            w.waiting_ == waiting::client_to_read)
            return waited > read_ticks_;
        if (w.waiting_ == waiting::at_rest && waited >= 2 && drain_.stop_requested()) return true;
        return waited > keep_alive_ticks_;
    }

    // Only a read of the request: a write of an earlier answer has read_timeout, and the
    // read after it is caught on the next tick.
    [[nodiscard]] bool overdue(const watch& w) const noexcept {
        if (w.waiting_ != waiting::rest_of_head && w.waiting_ != waiting::rest_of_body) return false;
        const std::uint64_t taken = now_ - w.request_since_;
        return taken > request_ticks_ || (w.waiting_ == waiting::rest_of_head && taken > header_ticks_);
    }

    // Cancelling only asks the ring: no read completes, and no watch leaves, meanwhile.
    void cancel_expired() noexcept {
        for (watch* w = head_; w; w = w->next_) {
            if (overdue(*w)) w->overdue_ = true;
            if (w->overdue_ || expired(*w)) w->cancel_.request_stop();
        }
    }

    void link(watch& w) noexcept {
        w.next_ = head_;
        if (head_) head_->prev_ = &w;
        head_ = &w;
    }
    void unlink(watch& w) noexcept {
        if (w.prev_)
            w.prev_->next_ = w.next_;
        else
            head_ = w.next_;
        if (w.next_) w.next_->prev_ = w.prev_;
    }

    std::uint64_t keep_alive_ticks_;
    std::uint64_t read_ticks_;
    std::uint64_t header_ticks_;
    std::uint64_t request_ticks_;
    std::stop_token drain_;
    std::optional<std::stop_callback<drain_callback>> on_drain_;
    watch* head_ = nullptr;
    std::uint64_t now_ = 0;
};

// Far more than a request's head usually takes; a longer one takes several reads.
inline constexpr std::size_t read_buffer_size = 8 * 1024;
inline constexpr std::chrono::seconds linger_time{2};

// A socket closed with unread bytes in it resets the connection, and the client may lose
// the responses it has not read yet. So when the client may have sent more, the server
// half-closes, then reads what is left until the client closes too, for linger_time at
// most (nginx's lingering close).
inline cluster::task<void> close_gently(cluster::tcp_stream& s, std::span<char> scratch) {
    (void)co_await s.shutdown(SHUT_WR);
    const auto deadline = std::chrono::steady_clock::now() + linger_time;
    for (;;) {
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left.count() <= 0) co_return;
        auto n = co_await s.read_some(scratch).with_timeout(left);
        if (!n || *n == 0) co_return;
    }
}

// The connections of one worker. serve() each accepted stream, then join(): it returns once
// every connection has ended. When `drain` is requested, each connection answers the
// request in progress with Connection: close, and connections at rest between requests
// close (see watchdog). Handler: void(const request&, response&); it must outlive the server.
template <class Handler>
class server {
public:
    server(Handler& handler, std::stop_token drain, limits l = {})
        : handler_(handler), limits_(l), drain_(drain), dog_(limits_, std::move(drain)) {
        clock_.spawn(watchdog::run(dog_));
    }

    void serve(cluster::tcp_stream stream) { connections_.spawn(serve_connection(std::move(stream), *this)); }

    cluster::task<void> join() {
        co_await connections_.join();
        clock_.request_stop();
        co_await clock_.join();
    }

private:
    // The answers to all the requests in one read leave in one write.
    static cluster::task<void> serve_connection(cluster::tcp_stream stream, server& self) {
        (void)stream.set_nodelay();
        connection<Handler> c(self.handler_, self.limits_, self.drain_);
        watchdog::watch watch(self.dog_);
        std::array<char, read_buffer_size> in;
        bool filled = false;  // the last read filled `in`: more may be waiting
        while (!c.closing()) {
            auto n = co_await stream.read_some(in).with_stop_token(watch.begin(c.next(), c.requests_begun()));
            if (watch.request_timed_out()) {
                c.time_out();  // even if bytes came meanwhile: the deadline had passed
            } else if (n && *n > 0) {
                filled = *n == in.size();
                c.feed(std::span<const char>(in.data(), *n));
            } else {
                co_return;  // the client left, or the watchdog gave up on a read
            }
            // A write_some loop, not stream.write(): that is a task, allocated per call.
            for (std::string_view rest = c.output(); !rest.empty();) {
                auto sent = co_await stream.write_some(rest).with_stop_token(
                    watch.begin(waiting::client_to_read, c.requests_begun()));
                if (!sent) co_return;
                rest.remove_prefix(*sent);
            }
            c.output().clear();
        }
        if (c.left_unread() || filled) co_await close_gently(stream, in);
    }

    Handler& handler_;
    const limits limits_;
    std::stop_token drain_;
    watchdog dog_;  // before the scopes: their tasks hold watches on it
    cluster::scope clock_;
    cluster::scope connections_;
};

}  // namespace http
