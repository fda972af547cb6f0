// The runtime layer in one include — io_context, task, structured concurrency, every
// awaitable op, signals and child processes — and its everyday names in namespace cluster.
#pragma once

#include <cluster/io/child_process.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/multishot_accept.hpp>
#include <cluster/io/op.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/signal_name.hpp>
#include <cluster/io/signal_set.hpp>
#include <cluster/io/sync_wait.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/when_all.hpp>

#include <cluster/error.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

// What every cluster program spells: cluster::task is cluster::io::task, and so on.
namespace cluster {
using io::child_process;
using io::current_stop_token;
using io::exit_status;
using io::io_context;
using io::latch;
using io::mailbox;
using io::scope;
using io::signal_set;
using io::sync_wait;
using io::task;
using io::when_all;
using io::when_any;
using io::with_timeout;
}  // namespace cluster
