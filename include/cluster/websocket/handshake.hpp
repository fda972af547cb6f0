// cluster::websocket::accept_handshake: the server's half of the opening handshake
// (RFC 6455, 4.2) — a request checked, and answered 101 with Sec-WebSocket-Accept.
#pragma once

#include <cluster/http/request.hpp>
#include <cluster/http/response.hpp>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/uuid/detail/sha1.hpp>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace cluster::websocket {

// base64(SHA-1(key + the protocol's GUID)).
inline std::string accept_key(std::string_view key) {
    boost::uuids::detail::sha1 hash;
    hash.process_bytes(key.data(), key.size());
    const std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    hash.process_bytes(guid.data(), guid.size());
    boost::uuids::detail::sha1::digest_type words;
    hash.get_digest(words);
    std::array<unsigned char, 20> digest;
    for (std::size_t i = 0; i < 5; ++i)
        for (std::size_t b = 0; b < 4; ++b) digest[i * 4 + b] = static_cast<unsigned char>(words[i] >> (24 - 8 * b));
    std::string out(boost::beast::detail::base64::encoded_size(digest.size()), '\0');
    out.resize(boost::beast::detail::base64::encode(out.data(), digest.data(), digest.size()));
    return out;
}

// Whether a comma-separated header value lists `token`, whatever its case.
inline bool lists_token(std::string_view value, std::string_view token) noexcept {
    while (!value.empty()) {
        const auto comma = value.find(',');
        auto item = value.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (http::same_token(item, token)) return true;
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return false;
}

// Answers `req`: 101 and true if it is a WebSocket opening handshake (the server then
// hands the connection to on_upgrade); else 426 (a version other than 13, saying which
// one this server speaks) or 400, and false. `extra_headers` (whole lines, each ending in
// \r\n) go in the 101 response.
inline bool accept_handshake(const http::request& req, http::response& res, std::string_view extra_headers = {}) {
    const auto upgrade = req.header("Upgrade");
    const auto version = req.header("Sec-WebSocket-Version");
    const auto key = req.header("Sec-WebSocket-Key");
    if (req.method != HTTP_GET || !req.upgrade || !upgrade || !lists_token(*upgrade, "websocket") || !key ||
        key->size() != 24) {
        res.send("400 Bad Request", "text/plain", "Not a WebSocket handshake\n");
        return false;
    }
    if (!version || *version != "13") {
        res.send("426 Upgrade Required", "text/plain", "WebSocket version 13 only\n", "Sec-WebSocket-Version: 13\r\n");
        return false;
    }
    const std::string accept = "Sec-WebSocket-Accept: " + accept_key(*key) + "\r\n" + std::string(extra_headers);
    return res.switch_protocols("websocket", accept);
}

}  // namespace cluster::websocket
