// cluster::websocket::options: the bounds of one WebSocket — message size, send queue —
// and its timeouts: idle pings, the close handshake, a peer that does not read.
#pragma once

#include <chrono>
#include <cstddef>

namespace cluster::websocket {

struct options {
    // A message received bigger than this, whole or in fragments, closes with 1009.
    std::size_t max_message_bytes = 1024 * 1024;
    // Messages queued and not yet written: a send past this closes with 1008 (a reader too
    // slow), rather than buffering without end.
    std::size_t max_send_queue_bytes = 4 * 1024 * 1024;
    // Nothing received for this long: a ping; nothing again for as long: the peer is gone.
    std::chrono::milliseconds ping_interval{30000};
    // After a close frame is sent, the peer's answer is awaited this long.
    std::chrono::milliseconds close_timeout{5000};
    // A write that makes no progress for this long ends the connection.
    std::chrono::milliseconds write_timeout{30000};
};

}  // namespace cluster::websocket
