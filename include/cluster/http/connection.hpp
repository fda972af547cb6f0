// cluster::http::connection: the parser's side of one HTTP/1.1 connection — llhttp (Node's
// own parser) run over the bytes read, one whole request at a time, within the limits.
#pragma once

#include <cluster/http/limits.hpp>
#include <cluster/http/request.hpp>
#include <cluster/http/response.hpp>

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

namespace cluster::http {

// What a connection waits for. Draining closes a connection at rest (see watchdog), but
// waits for the first request of a new one: it may be on its way already. The rest of a
// request is its head or its body: only the head has header_timeout. A handler at work,
// or a connection handed over by an upgrade, waits for nothing the watchdog may cancel.
enum class waiting { first_request, at_rest, rest_of_head, rest_of_body, client_to_read, handler, upgraded };

// parse() stops after each whole request, so that the handler (a coroutine, perhaps) runs
// between requests; the request's bytes are kept until the next one begins, within
// max_header_bytes and max_body_bytes, so a client cannot make them grow.
class connection {
public:
    // `drain` requested: each request from then on is answered with Connection: close.
    connection(const limits& l, std::stop_token drain) : limits_(l), drain_(std::move(drain)) {
        llhttp_init(&parser_, HTTP_REQUEST, &settings);
        parser_.data = this;
    }
    connection(const connection&) = delete;  // the parser points back at it
    connection& operator=(const connection&) = delete;

    // Parses from the front of `bytes`, and leaves in it what follows. True: a request is
    // whole, request() is it, and respond() gives the place to answer it. False: every byte
    // was taken and more are needed, or the request was bad (closing(), and its answer in
    // output()).
    bool parse(std::span<const char>& bytes) {
        const auto err = llhttp_execute(&parser_, bytes.data(), bytes.size());
        if (err == HPE_OK) {
            bytes = {};
            return false;
        }
        const char* stop = llhttp_get_error_pos(&parser_);
        bytes = bytes.subspan(static_cast<std::size_t>(stop - bytes.data()));
        if (err == HPE_PAUSED) {  // by on_message_complete
            llhttp_resume(&parser_);
            return true;
        }
        closing_ = true;
        unread_ = true;  // the bytes after a bad request are left unread
        const auto& answer = too_large_head_   ? header_too_large()
                             : too_large_body_ ? content_too_large()
                                               : bad_request();
        response(out_, false, false, false).send(answer);
        return false;
    }

    [[nodiscard]] const request& current() const noexcept { return request_; }
    [[nodiscard]] response respond() noexcept { return response(out_, keep_alive_, head_, request_.upgrade); }

    // After the handler: the connection closes once its output is sent unless `r` keeps it
    // alive; `rest`, the bytes after the request, are then left unread.
    void answered(const response& r, std::span<const char> rest) noexcept {
        if (r.keep_alive()) return;
        closing_ = true;
        unread_ = !rest.empty();
    }

    // The request was too slow to arrive: it is answered 408, and the connection closes.
    void time_out() {
        closing_ = true;
        unread_ = true;  // the client may still be sending it
        response(out_, false, false, false).send(request_timeout());
    }

    [[nodiscard]] waiting next() const noexcept {
        if (in_request_) return in_head_ ? waiting::rest_of_head : waiting::rest_of_body;
        return begun_ > 0 ? waiting::at_rest : waiting::first_request;
    }
    // How many requests have begun: the watchdog's cue that a request's deadlines start.
    [[nodiscard]] std::uint64_t requests_begun() const noexcept { return begun_; }
    // Once output() is sent, the connection closes.
    [[nodiscard]] bool closing() const noexcept { return closing_; }
    // Closing, with bytes of the client's left unread.
    [[nodiscard]] bool left_unread() const noexcept { return unread_; }
    [[nodiscard]] std::string& output() noexcept { return out_; }

private:
    // Where a header's name and value are in buf_: it grows, so views come at the end.
    struct header_span {
        std::size_t name = 0, name_size = 0, value = 0, value_size = 0;
    };

    static connection& of(llhttp_t* p) noexcept { return *static_cast<connection*>(p->data); }

    static int on_message_begin(llhttp_t* p) noexcept {
        auto& c = of(p);
        ++c.begun_;
        c.in_request_ = true;
        c.in_head_ = true;
        c.in_name_ = false;
        c.buf_.clear();
        c.spans_.clear();
        c.target_size_ = 0;
        c.body_at_ = 0;
        c.header_bytes_ = 0;
        return 0;
    }

    // The head's bytes, counted against max_header_bytes before they are kept.
    static int keep_head(llhttp_t* p, const char* at, std::size_t n) noexcept {
        auto& c = of(p);
        c.header_bytes_ += n;
        if (c.header_bytes_ > c.limits_.max_header_bytes) {
            c.too_large_head_ = true;
            return -1;
        }
        c.buf_.append(at, n);
        return 0;
    }

    static int on_url(llhttp_t* p, const char* at, std::size_t n) noexcept {
        of(p).target_size_ += n;
        return keep_head(p, at, n);
    }

    static int on_header_field(llhttp_t* p, const char* at, std::size_t n) noexcept {
        auto& c = of(p);
        if (!c.in_name_) c.spans_.push_back({.name = c.buf_.size()});
        c.in_name_ = true;
        c.spans_.back().name_size += n;
        return keep_head(p, at, n);
    }

    static int on_header_value(llhttp_t* p, const char* at, std::size_t n) noexcept {
        auto& c = of(p);
        if (c.in_name_) c.spans_.back().value = c.buf_.size();
        c.in_name_ = false;
        c.spans_.back().value_size += n;
        return keep_head(p, at, n);
    }

    static int on_headers_complete(llhttp_t* p) noexcept {
        auto& c = of(p);
        c.in_head_ = false;
        c.body_at_ = c.buf_.size();
        if (p->content_length <= c.limits_.max_body_bytes) return 0;
        c.too_large_body_ = true;
        return -1;
    }

    static int on_body(llhttp_t* p, const char* at, std::size_t n) noexcept {
        auto& c = of(p);
        if (c.buf_.size() - c.body_at_ + n > c.limits_.max_body_bytes) {
            c.too_large_body_ = true;
            return -1;
        }
        c.buf_.append(at, n);
        return 0;
    }

    // Pauses the parser: parse() returns, and the handler runs, before the next request.
    static int on_message_complete(llhttp_t* p) noexcept {
        auto& c = of(p);
        c.in_request_ = false;
        const auto method = static_cast<llhttp_method_t>(llhttp_get_method(p));
        const bool upgrade = llhttp_get_upgrade(p) != 0;
        // An upgrade not taken (see response::switch_protocols) ends the connection.
        c.keep_alive_ = llhttp_should_keep_alive(p) && !upgrade && !c.drain_.stop_requested();
        c.head_ = method == HTTP_HEAD;
        c.headers_.clear();
        for (const auto& s : c.spans_)
            c.headers_.push_back({std::string_view(c.buf_).substr(s.name, s.name_size),
                                  std::string_view(c.buf_).substr(s.value, s.value_size)});
        const std::string_view all(c.buf_);
        c.request_ = request{.method = method,
                             .target = all.substr(0, c.target_size_),
                             .headers = c.headers_,
                             .body = all.substr(c.body_at_),
                             .upgrade = upgrade};
        return HPE_PAUSED;
    }

    static llhttp_settings_t make_settings() noexcept {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = on_message_begin;
        s.on_url = on_url;
        s.on_header_field = on_header_field;
        s.on_header_value = on_header_value;
        s.on_headers_complete = on_headers_complete;
        s.on_body = on_body;
        s.on_message_complete = on_message_complete;
        return s;
    }
    static inline const llhttp_settings_t settings = make_settings();

    llhttp_t parser_;
    const limits& limits_;
    std::stop_token drain_;
    std::string out_;
    std::string buf_;  // the request: its target, header names and values, and body
    std::vector<header_span> spans_;
    std::vector<header> headers_;
    request request_;
    std::size_t target_size_ = 0;
    std::size_t body_at_ = 0;
    std::size_t header_bytes_ = 0;
    std::uint64_t begun_ = 0;
    bool in_request_ = false;
    bool in_head_ = false;
    bool in_name_ = false;
    bool keep_alive_ = false;
    bool head_ = false;
    bool too_large_head_ = false;
    bool too_large_body_ = false;
    bool closing_ = false;
    bool unread_ = false;
};

}  // namespace cluster::http
