// The Asio bridge in one include, an optional component (cluster::asio) that cluster.hpp never
// pulls in: an asio::io_context on a worker's thread, each side awaiting the other, connections to Asio.
#pragma once

#include <cluster/asio/acceptor.hpp>
#include <cluster/asio/adopt.hpp>
#include <cluster/asio/async_await.hpp>
#include <cluster/asio/async_wait.hpp>
#include <cluster/asio/connection.hpp>
#include <cluster/asio/native_acceptor.hpp>
#include <cluster/asio/run.hpp>
#include <cluster/asio/use_task.hpp>
