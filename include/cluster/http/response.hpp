// cluster::http::response: where a handler answers a request, once — a response formatted
// now, or one prepared at start-up — or switches the connection to the protocol it asked for.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>

namespace cluster::http {

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

// The handler's answer is appended to the connection's output, which leaves with the
// answers to the other requests of the same read.
class response {
public:
    response(std::string& out, bool keep_alive, bool head, bool upgrade) noexcept
        : out_(out), keep_alive_(keep_alive), head_(head), upgrade_(upgrade) {}

    void send(const prepared_response& r) { out_.append(r.bytes(keep_alive_, !head_)); }

    // `extra_headers`: whole lines, each ending in \r\n.
    void send(std::string_view status, std::string_view content_type, std::string_view body,
              std::string_view extra_headers = {}) {
        append_head(out_, status, content_type, body.size(), keep_alive_, extra_headers);
        if (!head_) out_.append(body);
    }

    // Answers 101 Switching Protocols with `extra_headers` (whole lines); once it is sent,
    // the server hands the connection to the handler's on_upgrade (see server). False,
    // and nothing sent, unless the request asked for an upgrade.
    bool switch_protocols(std::string_view upgrade_to, std::string_view extra_headers = {}) {
        if (!upgrade_) return false;
        out_.append("HTTP/1.1 101 Switching Protocols\r\nUpgrade: ").append(upgrade_to);
        out_.append("\r\nConnection: Upgrade\r\n").append(extra_headers).append("\r\n");
        switched_ = true;
        return true;
    }

    // Whether the connection takes another request after this one.
    [[nodiscard]] bool keep_alive() const noexcept { return keep_alive_ && !switched_; }
    [[nodiscard]] bool switched() const noexcept { return switched_; }

private:
    std::string& out_;
    bool keep_alive_;
    bool head_;
    bool upgrade_;
    bool switched_ = false;
};

inline const prepared_response& bad_request() {
    static const prepared_response r("400 Bad Request", "text/plain", "Bad Request\n");
    return r;
}

inline const prepared_response& request_timeout() {
    static const prepared_response r("408 Request Timeout", "text/plain", "Request Timeout\n");
    return r;
}

inline const prepared_response& content_too_large() {
    static const prepared_response r("413 Content Too Large", "text/plain", "Content Too Large\n");
    return r;
}

inline const prepared_response& header_too_large() {
    static const prepared_response r("431 Request Header Fields Too Large", "text/plain",
                                     "Request Header Fields Too Large\n");
    return r;
}

}  // namespace cluster::http
