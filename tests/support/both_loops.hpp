// support: a test's body run on a fresh cluster loop with an asio::io_context inside it — the
// one thread, two loops of cluster::asio — and the check that no descriptor outlives them.
#pragma once

#include <chrono>
#include <cstddef>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cluster/cluster.hpp>

#include "support/descriptors.hpp"
#include "support/waiting.hpp"

namespace support {

// Runs body(asio) on a fresh cluster loop made with `options`, with `asio` declared inside it
// (destroyed first), within 30 s.
template <class Body>
void on_both_loops(Body body, cluster::io::io_context_options options = {}) {
    const std::size_t fds = open_fd_count();
    {
        cluster::io_context ctx(options);
        boost::asio::io_context asio{1};
        cluster::sync_wait(bounded(body(asio), std::chrono::seconds(30)));
    }
    CHECK(open_fd_count() == fds);
}

}  // namespace support
