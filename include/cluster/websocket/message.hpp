// cluster::websocket::message: what receive() gives — a whole text or binary message, or
// the close that ended the connection, with its code and reason.
#pragma once

#include <cluster/websocket/close_code.hpp>

#include <string>

namespace cluster::websocket {

enum class kind { text, binary, close };

struct message {
    websocket::kind kind = kind::close;
    // The payload (text: checked UTF-8); for a close, its reason.
    std::string data;
    // For a close: the code of the close frame that began the handshake, ours or the
    // peer's (no_status if it had none), or abnormal when the connection just ended.
    close_code code = close_code::normal;
};

}  // namespace cluster::websocket
