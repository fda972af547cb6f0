// cluster::asio::detail::bridge: what an Asio execution context keeps for cluster, as a service of
// it — the cluster tasks started for its handlers, and the thread its io_context shares.
#pragma once

#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>

#include <cerrno>
#include <optional>
#include <system_error>
#include <utility>

#include <cluster/asio/detail/shared_thread.hpp>
#include <cluster/error.hpp>
#include <cluster/io/io_context.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>

namespace cluster::asio::detail {

class bridge final : public boost::asio::execution_context::service {
public:
    using key_type = bridge;
    static inline boost::asio::execution_context::id id;

    explicit bridge(boost::asio::execution_context& owner) : boost::asio::execution_context::service(owner) {}

    // Starts `t` now, on this thread's cluster loop. A task still running when the context
    // shuts down is destroyed where it stands (its ops cancelled first), with the handler it holds.
    void spawn(io::task<void> t) { tasks_->spawn(std::move(t)); }

    // `asio`'s thread, shared with the cluster loop running this one: asio must be this service's
    // owner, and every later call must come from the same cluster loop.
    shared_thread& thread_of(boost::asio::io_context& asio) {
        io::io_context& cluster = io::io_context::current_or_throw();
        if (!thread_) thread_.emplace(asio, cluster);
        if (&thread_->cluster() != &cluster)
            throw std::system_error(errno_code(EXDEV), "cluster: an asio::io_context shares the thread of one cluster "
                                                       "io_context, the one that first ran it");
        return *thread_;
    }

private:
    // The context shuts down: the tasks go, with the handlers they hold (and the work those
    // count), and so does the eventfd's watch, which refers to this service.
    void shutdown() override {
        tasks_.reset();
        thread_.reset();
    }

    std::optional<shared_thread> thread_;
    std::optional<io::scope> tasks_{std::in_place};
};

inline bridge& bridge_of(boost::asio::execution_context& context) { return boost::asio::use_service<bridge>(context); }

}  // namespace cluster::asio::detail
