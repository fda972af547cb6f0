// cluster::detail::thread_peers: a primary's thread workers' links by worker id, for a thread
// worker's send_to() another thread worker to go straight into its pipe, not through the primary.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include <cluster/detail/thread_link.hpp>

namespace cluster::detail {

// Shared by the primary, which lists each thread worker as it starts, and the thread workers,
// which look up the ones they send to. A link is held weakly: once neither end holds it, it
// is gone from here too.
class thread_peers {
public:
    void add(unsigned worker_id, const std::shared_ptr<thread_link>& link) {
        const std::lock_guard lock(mutex_);
        std::erase_if(links_, [](const auto& entry) { return entry.second.expired(); });
        links_[worker_id] = link;
    }

    // Worker `worker_id`'s link, if it is a thread worker of this primary's whose link is
    // still held; else null (a process worker, or one gone).
    [[nodiscard]] std::shared_ptr<thread_link> find(unsigned worker_id) const {
        const std::lock_guard lock(mutex_);
        auto it = links_.find(worker_id);
        return it == links_.end() ? nullptr : it->second.lock();
    }

private:
    mutable std::mutex mutex_;
    std::map<unsigned, std::weak_ptr<thread_link>> links_;
};

}  // namespace cluster::detail
