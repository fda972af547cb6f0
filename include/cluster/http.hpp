// cluster/http.hpp: the optional HTTP/1.1 component (CMake target cluster::http, present
// when node-llhttp's sources are found) — a worker's HTTP server, its requests and responses.
#pragma once

#include <cluster/http/connection.hpp>
#include <cluster/http/handler.hpp>
#include <cluster/http/limits.hpp>
#include <cluster/http/lingering_close.hpp>
#include <cluster/http/request.hpp>
#include <cluster/http/response.hpp>
#include <cluster/http/server.hpp>
#include <cluster/http/upgraded.hpp>
#include <cluster/http/watchdog.hpp>
