// cluster::websocket::accept_handshake and accept_key: RFC 6455's example key, a request
// accepted with 101, and the ones refused with 400 or 426.
#include <catch2/catch.hpp>

#include <cluster/http/request.hpp>
#include <cluster/http/response.hpp>
#include <cluster/websocket/handshake.hpp>

#include <array>
#include <string>

using namespace cluster;

namespace {

std::array<http::header, 4> handshake_headers(std::string_view version = "13") {
    return {http::header{"Upgrade", "WebSocket"}, http::header{"Connection", "keep-alive, Upgrade"},
            http::header{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
            http::header{"sec-websocket-version", version}};
}

// The answer to `req`, and whether it switched.
std::pair<std::string, bool> answer(const http::request& req) {
    std::string out;
    http::response res(out, true, false, req.upgrade);
    const bool accepted = websocket::accept_handshake(req, res);
    CHECK(accepted == res.switched());
    return {out, accepted};
}

}  // namespace

TEST_CASE("accept_key: RFC 6455's example") {
    CHECK(websocket::accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST_CASE("accept_handshake: a WebSocket request is answered 101 with its Sec-WebSocket-Accept") {
    const auto headers = handshake_headers();
    const http::request req{.method = HTTP_GET, .target = "/ws", .headers = headers, .body = {}, .upgrade = true};
    const auto [out, accepted] = answer(req);
    CHECK(accepted);
    CHECK(out == "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
}

TEST_CASE("accept_handshake: no upgrade, a POST or a bad key is 400, another version 426") {
    const auto headers = handshake_headers();
    const http::request plain{.method = HTTP_GET, .target = "/ws", .headers = headers, .body = {}, .upgrade = false};
    CHECK(answer(plain).first.find("HTTP/1.1 400 ") == 0);
    const http::request post{.method = HTTP_POST, .target = "/ws", .headers = headers, .body = {}, .upgrade = true};
    CHECK(answer(post).first.find("HTTP/1.1 400 ") == 0);
    auto bad_key = handshake_headers();
    bad_key[2].value = "short";
    const http::request short_key{.method = HTTP_GET, .target = "/ws", .headers = bad_key, .body = {}, .upgrade = true};
    CHECK(answer(short_key).first.find("HTTP/1.1 400 ") == 0);
    const auto old = handshake_headers("8");
    const http::request old_version{.method = HTTP_GET, .target = "/ws", .headers = old, .body = {}, .upgrade = true};
    const auto [out, accepted] = answer(old_version);
    CHECK_FALSE(accepted);
    CHECK(out.find("HTTP/1.1 426 Upgrade Required\r\n") == 0);
    CHECK(out.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
}
