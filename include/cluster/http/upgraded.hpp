// cluster::http::upgraded: a connection handed over after its request asked to switch
// protocols (WebSocket, say) and the handler agreed (response::switch_protocols).
#pragma once

#include <cluster/http/request.hpp>
#include <cluster/net/tcp_stream.hpp>

#include <span>

namespace cluster::http {

// The 101 answer is sent already. `request` and `rest` (the bytes the client sent after its
// request, read already: the new protocol's first) stay valid until on_upgrade's task ends.
struct upgraded {
    net::tcp_stream stream;
    const http::request* request = nullptr;
    std::span<const char> rest;
};

}  // namespace cluster::http
