// cluster::io::detail::held_children: the pids that io::child_process handles of this process
// hold and will reap, so that whoever reaps orphans can tell them apart and leave them be.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <set>

namespace cluster::io::detail {

class held_children {
public:
    // The one registry of the process (its threads' handles included).
    static held_children& instance() {
        static held_children registry;
        return registry;
    }

    void hold(pid_t pid) {
        const std::lock_guard lock(mutex_);
        pids_.insert(pid);
    }
    void release(pid_t pid) noexcept {
        const std::lock_guard lock(mutex_);
        pids_.erase(pid);
    }
    // In a forked child: the parent's children are not its own.
    void forget_all() noexcept {
        const std::lock_guard lock(mutex_);
        pids_.clear();
    }
    [[nodiscard]] bool holds(pid_t pid) const {
        const std::lock_guard lock(mutex_);
        return pids_.count(pid) != 0;
    }

private:
    mutable std::mutex mutex_;
    std::set<pid_t> pids_;
};

}  // namespace cluster::io::detail
