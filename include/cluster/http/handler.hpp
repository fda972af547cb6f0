// cluster::http::handler: what a server asks of the application — an answer to each
// request, synchronous or a coroutine, and optionally the connections that switch protocols.
#pragma once

#include <cluster/http/request.hpp>
#include <cluster/http/response.hpp>
#include <cluster/http/upgraded.hpp>
#include <cluster/io/task.hpp>

#include <concepts>
#include <type_traits>

namespace cluster::http {

// h(request, response) answers through the response, before it returns (void) or before
// its task ends (io::task<void>). Only the answer matters: a handler's exception ends the
// server's join() with it, so answer errors (500) instead.
template <class H>
concept handler = std::invocable<H&, const request&, response&> &&
                  (std::same_as<std::invoke_result_t<H&, const request&, response&>, void> ||
                   std::same_as<std::invoke_result_t<H&, const request&, response&>, io::task<void>>);

// h.on_upgrade(upgraded) takes over a connection its handler switched (to WebSocket, say):
// the connection is the server's (join() waits for it) until the task ends.
template <class H>
concept upgrade_handler = requires(H& h, upgraded u) {
    { h.on_upgrade(std::move(u)) } -> std::same_as<io::task<void>>;
};

}  // namespace cluster::http
