// cluster/websocket.hpp: the optional WebSocket component (CMake target cluster::websocket,
// present when cluster::http and wslay are) — RFC 6455's server side on a tcp_stream.
#pragma once

#include <cluster/websocket/close_code.hpp>
#include <cluster/websocket/group.hpp>
#include <cluster/websocket/handshake.hpp>
#include <cluster/websocket/message.hpp>
#include <cluster/websocket/options.hpp>
#include <cluster/websocket/socket.hpp>
#include <cluster/websocket/utf8.hpp>
