// cluster::redis::errc and its std::error_category: why a Redis command got no reply.
// A reply the server sends as an error (-ERR ...) is a value, not one of these.
#pragma once

#include <string>
#include <system_error>
#include <type_traits>

namespace cluster::redis {

enum class errc {
    not_connected = 1,  // the link is down (reconnecting, or never came up): nothing was sent
    connection_lost,    // the link dropped while the command was in flight: it may or may not have run
    too_many_pending,   // the client already has its limit of commands queued or in flight
    reply_too_large,    // a reply above the client's size limit: the connection is dropped
    protocol_error,     // the server sent bytes that are not RESP: the connection is dropped
    handshake_failed,   // AUTH, SELECT or a resubscription was refused at connect
    invalid_command,    // an empty command, or one hiredis could not format
    closed,             // the client or subscriber was closed
};

class error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "cluster.redis"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::not_connected: return "not connected to the Redis server";
        case errc::connection_lost: return "the connection to the Redis server was lost with the command in flight";
        case errc::too_many_pending: return "too many Redis commands queued or in flight";
        case errc::reply_too_large: return "a Redis reply larger than the client's limit";
        case errc::protocol_error: return "the Redis server sent something that is not RESP";
        case errc::handshake_failed: return "the Redis server refused AUTH, SELECT or a subscription at connect";
        case errc::invalid_command: return "an empty or unformattable Redis command";
        case errc::closed: return "the Redis client was closed";
        }
        return "unknown Redis client error";
    }
};

inline const std::error_category& redis_category() noexcept {
    static const error_category category;
    return category;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), redis_category()}; }

}  // namespace cluster::redis

template <>
struct std::is_error_code_enum<cluster::redis::errc> : std::true_type {};
