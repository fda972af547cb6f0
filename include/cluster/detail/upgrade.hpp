// cluster::detail::upgrader: the primary replacing its own binary (SIGUSR2, as nginx) — on the
// old side, starting the successor with every listening socket and waiting for it to be ready
// or rolling back; on the new side, telling the predecessor that it is.
#pragma once

#include <cluster/config.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cluster/detail/balancer.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/task.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

class supervisor;

// Names the successor's end of the link to its predecessor, in the successor's environment.
inline constexpr const char* predecessor_fd_env = "CLUSTER_PREDECESSOR_FD";

// What a successor tells its predecessor over their link.
struct successor_word {
    enum class what : std::int32_t { ready = 1, exec_failed = 2 };
    what said = what::ready;
    std::int32_t value = 0;  // ready: the successor's pid; exec_failed: errno
};

class upgrader {
public:
    explicit upgrader(supervisor& s) noexcept : s_(s) {}

    // SIGUSR2: an upgrade, unless one is running, or a reload or a stop is (refused, saying why).
    CLUSTER_DECL void upgrade_on_signal();

    // At the successor's start: the link to its predecessor, if the environment names one (then
    // removed from the environment, so that workers do not see it). Once the cluster is ready,
    // the predecessor hears so, and stops.
    CLUSTER_DECL void take_predecessor_link();

    [[nodiscard]] bool running() const noexcept { return running_; }
    // This primary is an upgrade's successor: it takes over its predecessor's control socket.
    [[nodiscard]] bool succeeding() const noexcept { return static_cast<bool>(predecessor_); }

    // Why an upgrade cannot start now; empty if it can.
    CLUSTER_DECL std::string refusal() const;

private:
    static CLUSTER_DECL io::task<void> upgrade(upgrader& self);

    // The successor, started with `sockets` and its end of the link; or why not.
    CLUSTER_DECL result<io::child_process> start_successor(const std::vector<handed_socket>& sockets,
                                                           unique_fd& link_end, std::string& what);

    // What the successor said (or that it exited, or ran out of time): empty once it is ready.
    CLUSTER_DECL io::task<std::string> until_successor_ready(io::child_process& successor, int link);

    // A successor that did not make it: stopped as a stop signal would, killed if it lingers.
    CLUSTER_DECL io::task<void> roll_back(io::child_process& successor);

    static CLUSTER_DECL io::task<void> tell_predecessor(upgrader& self);

    static io::task<void> time_out(std::chrono::milliseconds d) { (void)co_await io::sleep_for(d); }

    supervisor& s_;
    bool running_ = false;
    unique_fd predecessor_;
    bool took_over_ = false;  // the predecessor was told this primary is ready
    unique_fd successor_;     // the link, open until this primary exits: the successor waits for that
};

}  // namespace cluster::detail
