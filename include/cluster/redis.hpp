// <cluster/redis.hpp>: the optional Redis component (CMake target cluster::redis, with
// hiredis): an asynchronous client and a pub/sub subscriber on the process's io_context.
#pragma once

#include <cluster/redis/client.hpp>
#include <cluster/redis/error.hpp>
#include <cluster/redis/options.hpp>
#include <cluster/redis/reply.hpp>
#include <cluster/redis/subscriber.hpp>
