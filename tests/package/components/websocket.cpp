// A program of the installed components: llhttp parses a request in cluster::http, and
// cluster::websocket answers its handshake.
#include <cluster/http.hpp>
#include <cluster/websocket.hpp>

#include <cstdio>
#include <span>
#include <string_view>

int main() {
    const cluster::http::limits limits;
    cluster::http::connection c(limits, {});
    const std::string_view bytes = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    std::span<const char> rest(bytes.data(), bytes.size());
    if (!c.parse(rest)) return 1;
    auto res = c.respond();
    if (!cluster::websocket::accept_handshake(c.current(), res)) return 2;
    std::printf("components: %s", c.output().c_str());
}
