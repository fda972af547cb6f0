// Everything cluster offers, in one include.
// Layers, bottom to top: io (runtime), wire (typed messages), ipc (channels), cluster.
#pragma once

#include <cluster/io.hpp>
#include <cluster/ipc.hpp>
#include <cluster/wire.hpp>

#include <cluster/control.hpp>
#include <cluster/cpu_count.hpp>
#include <cluster/endpoint.hpp>
#include <cluster/events.hpp>
#include <cluster/exit_code.hpp>
#include <cluster/listen_socket.hpp>
#include <cluster/listener.hpp>
#include <cluster/message.hpp>
#include <cluster/options.hpp>
#include <cluster/primary.hpp>
#include <cluster/resident_memory.hpp>
#include <cluster/restart_policy.hpp>
#include <cluster/role.hpp>
#include <cluster/run.hpp>
#include <cluster/schedule.hpp>
#include <cluster/tcp_stream.hpp>
#include <cluster/worker.hpp>
#include <cluster/worker_handle.hpp>
