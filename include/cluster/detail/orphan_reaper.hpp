// cluster::detail::orphan_reaper: the primary as PID 1 or a child subreaper — it reaps every
// orphan the kernel hands it, at each SIGCHLD, and never a child that is its own.
#pragma once

#include <cluster/config.hpp>

#include <sys/types.h>

#include <functional>
#include <optional>
#include <vector>

#include <cluster/io/signal_set.hpp>
#include <cluster/io/task.hpp>

namespace cluster::detail {

// Whether to reap orphans: as asked, else only as PID 1 (a container's init).
[[nodiscard]] CLUSTER_DECL bool reaps_orphans(std::optional<bool> asked) noexcept;

// The pids of this process's children, whichever of its threads forked them, zombies included.
[[nodiscard]] CLUSTER_DECL std::vector<pid_t> children_of_this_process();

class orphan_reaper {
public:
    // `own`: whether a pid is one of the primary's own children, whose handles reap them
    // and take their exit status: the reaper never waits for those.
    explicit orphan_reaper(std::function<bool(pid_t)> own) : own_(std::move(own)) {}
    orphan_reaper(const orphan_reaper&) = delete;
    orphan_reaper& operator=(const orphan_reaper&) = delete;
    // A process it made a subreaper is one no more.
    CLUSTER_DECL ~orphan_reaper();

    // Takes SIGCHLD through a signalfd and, not being PID 1, becomes a subreaper, so that
    // the orphans of its descendants come to it. Throws if the kernel refuses.
    CLUSTER_DECL void start();

    // Reaps what has ended, then again at each SIGCHLD, until cancelled.
    static CLUSTER_DECL io::task<void> run(orphan_reaper& self);

    // Reaps every child that has ended and is not the primary's own.
    CLUSTER_DECL void reap_ended() const;

    // In a fork-mode worker, still inside fork(): the signalfd is the primary's.
    CLUSTER_DECL void close_in_forked_child() const noexcept;

private:
    std::function<bool(pid_t)> own_;
    std::optional<io::signal_set> sigchld_;
    bool made_subreaper_ = false;
};

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/orphan_reaper.ipp>
#endif
