// cluster::websocket::close_code: the status codes of a close frame this server sends or
// reports (RFC 6455, 7.4.1), named.
#pragma once

#include <cstdint>

namespace cluster::websocket {

enum class close_code : std::uint16_t {
    normal = 1000,
    going_away = 1001,  // the worker leaves for good: a stop, a scale-down
    protocol_error = 1002,
    unsupported_data = 1003,
    no_status = 1005,         // the peer's close frame had none; never sent
    abnormal = 1006,          // the connection ended without a close handshake; never sent
    invalid_payload = 1007,   // a text message that is not UTF-8
    policy_violation = 1008,  // here: a reader too slow for its send queue
    message_too_big = 1009,
    internal_error = 1011,
    service_restart = 1012,  // the worker is replaced: a reload, a recycle, an upgrade
};

}  // namespace cluster::websocket
