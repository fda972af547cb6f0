// cluster::redis::options: where a client or subscriber connects, how it logs in, how it
// reconnects, and the limits that keep its memory bounded.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include <cluster/net/endpoint.hpp>

namespace cluster::redis {

struct options {
    net::endpoint server = net::endpoint::tcp("127.0.0.1", 6379);  // TCP, or endpoint::unix_socket(path)
    std::string user;      // AUTH user password (Redis 6 ACLs) when set, else AUTH password
    std::string password;  // no AUTH when empty
    int database = 0;      // SELECT at every connect when not 0
    std::chrono::milliseconds connect_timeout{2000};
    // After a failed attempt or a dropped link: wait backoff_min, doubling up to backoff_max.
    std::chrono::milliseconds backoff_min{50};
    std::chrono::milliseconds backoff_max{2000};
    std::size_t max_reply_bytes = 64u << 20;  // one reply (or a run of unparsed input) past this drops the link
    std::size_t max_pending = 65536;          // commands queued or in flight; subscriber: messages not yet taken
};

}  // namespace cluster::redis
