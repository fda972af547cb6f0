// Everything cluster offers, in one include: the layers, bottom to top, and the cluster API.
//
// Where things live (docs/architecture.md has the whole map). A folder is a namespace:
//   cluster/*.hpp          namespace cluster: the cluster API (primary, worker, events,
//                          options, run) and the base types every layer shares (errc,
//                          result, unique_fd)
//   cluster/io/            cluster::io    the runtime: io_context, task, ops, scope, ...
//   cluster/wire/          cluster::wire  typed messages: codec, protocol, frames
//   cluster/ipc/           cluster::ipc   channels between processes
//   cluster/net/           cluster::net   endpoints, sockets, streams, listeners
//   <folder>/detail/       <its namespace>::detail   internals: not API, may change
// A layer includes only the layers below it. The layer headers (cluster/io.hpp, wire.hpp,
// ipc.hpp, net.hpp) also name their everyday types in namespace cluster: cluster::task is
// cluster::io::task, cluster::endpoint is cluster::net::endpoint.
#pragma once

#include <cluster/io.hpp>
#include <cluster/ipc.hpp>
#include <cluster/net.hpp>
#include <cluster/wire.hpp>

#include <cluster/cpu_count.hpp>
#include <cluster/error.hpp>
#include <cluster/events.hpp>
#include <cluster/exit_code.hpp>
#include <cluster/hand_over.hpp>
#include <cluster/incoming.hpp>
#include <cluster/job_pool.hpp>
#include <cluster/leave_reason.hpp>
#include <cluster/metrics.hpp>
#include <cluster/options.hpp>
#include <cluster/output_line.hpp>
#include <cluster/overload.hpp>
#include <cluster/primary.hpp>
#include <cluster/resident_memory.hpp>
#include <cluster/restart_policy.hpp>
#include <cluster/result.hpp>
#include <cluster/role.hpp>
#include <cluster/run.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/worker.hpp>
#include <cluster/worker_handle.hpp>
#include <cluster/worker_output.hpp>
