// The runtime layer in one include: io_context, task, structured concurrency, every
// awaitable op, signals and child processes.
#pragma once

#include <cluster/io/child_process.hpp>
#include <cluster/io/error.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/latch.hpp>
#include <cluster/io/mailbox.hpp>
#include <cluster/io/multishot_accept.hpp>
#include <cluster/io/op.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/result.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/signal_set.hpp>
#include <cluster/io/sync_wait.hpp>
#include <cluster/io/task.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/unique_fd.hpp>
#include <cluster/io/when_all.hpp>
