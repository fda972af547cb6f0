// The ipc layer in one include — channel<P> over a socketpair, the frame reader that feeds
// it, sealed memfds for large payloads, requests — and cluster::channel, its everyday name.
#pragma once

#include <cluster/ipc/channel.hpp>
#include <cluster/ipc/frame_reader.hpp>
#include <cluster/ipc/memfd.hpp>
#include <cluster/ipc/request_table.hpp>

namespace cluster {
using ipc::channel;
}  // namespace cluster
