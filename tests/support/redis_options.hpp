// support: a Redis client's options as the redis tests use them — the test's own server, and
// reconnects quick enough that a restarted server is back within a test's wait.
#pragma once

#include <chrono>
#include <utility>

#include <cluster/net/endpoint.hpp>
#include <cluster/redis.hpp>

namespace support {

inline cluster::redis::options redis_options(cluster::net::endpoint server) {
    cluster::redis::options o;
    o.server = std::move(server);
    o.backoff_min = std::chrono::milliseconds(10);
    o.backoff_max = std::chrono::milliseconds(100);
    return o;
}

}  // namespace support
