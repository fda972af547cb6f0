// cluster::http::limits: how much a client may send, and how long it may take, before an
// HTTP/1.1 connection answers 413, 431 or 408 and closes (Node's server options).
#pragma once

#include <chrono>
#include <cstddef>

namespace cluster::http {

struct limits {
    // The request line and headers, counted as Node counts them (the bytes of the target,
    // names and values): a request above gets 431 and the connection closes. Node's
    // default (--max-http-header-size).
    std::size_t max_header_bytes = 16 * 1024;
    // A request's body: one declaring or sending more gets 413 and the connection closes.
    // The body is kept for the handler, so it is bounded.
    std::size_t max_body_bytes = 1024 * 1024;
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

}  // namespace cluster::http
