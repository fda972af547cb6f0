// cluster::http::request: what a handler sees of one parsed request — method, target,
// headers and body, as views into the connection's buffer, valid until the handler returns.
#pragma once

#include <llhttp.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <span>
#include <string_view>

namespace cluster::http {

struct header {
    std::string_view name;
    std::string_view value;
};

// Header names compare without regard to case (RFC 9110, 5.1).
inline bool same_token(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
               return std::tolower(x) == std::tolower(y);
           });
}

struct request {
    llhttp_method_t method = HTTP_GET;
    std::string_view target;  // as sent: the path and the query
    std::span<const http::header> headers;
    std::string_view body;
    // The client asked to switch protocols (an Upgrade: header, or CONNECT): see
    // response::switch_protocols.
    bool upgrade = false;

    // The target up to its query.
    [[nodiscard]] std::string_view path() const noexcept { return target.substr(0, target.find('?')); }
    // After the '?', or empty.
    [[nodiscard]] std::string_view query() const noexcept {
        const auto q = target.find('?');
        return q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
    }
    // The first header named `name`, whatever its case.
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const noexcept {
        for (const auto& h : headers)
            if (same_token(h.name, name)) return h.value;
        return std::nullopt;
    }
};

}  // namespace cluster::http
