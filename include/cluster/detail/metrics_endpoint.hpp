// cluster::detail::metrics_endpoint: the primary's own HTTP listener for GET /metrics — a
// second job in its loop, bounded in bytes, time and clients, so scrapes never delay supervision.
#pragma once

#include <cluster/config.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <cluster/detail/acceptor.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/endpoint.hpp>
#include <cluster/overload.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

// Scrapes served at once; a client past them is closed as soon as it is accepted.
inline constexpr std::size_t max_scrapes = 16;
// A request head longer than this is answered 431 and closed.
inline constexpr std::size_t max_scrape_head = 8u << 10;
// A client has this long to send its whole request head, and then to take the whole answer.
inline constexpr std::chrono::seconds scrape_request_time{5};
inline constexpr std::chrono::seconds scrape_write_time{5};

// The whole HTTP/1.1 response (Connection: close) to a request head read as far as
// max_scrape_head and a byte more: 200 with page() for GET /metrics, else 404, 405, 400 or 431.
CLUSTER_DECL std::string scrape_response(std::string_view head, const std::function<std::string()>& page);

class metrics_endpoint {
public:
    using page_function = std::function<std::string()>;

    explicit metrics_endpoint(overload_counts& counts) noexcept : counts_(counts) {}
    metrics_endpoint(const metrics_endpoint&) = delete;
    metrics_endpoint& operator=(const metrics_endpoint&) = delete;

    // Listens on `where` and answers its scrapes with page(), its tasks in `tasks`, which
    // ends before this does. Throws std::system_error naming the endpoint and the step that
    // failed. An IP socket sets SO_REUSEPORT: a binary upgrade's successor binds the same
    // address while this primary still serves it.
    CLUSTER_DECL void start(const net::endpoint& where, page_function page, io::scope& tasks);

    // Where it listens (with the port the kernel chose for port 0); no address before start().
    [[nodiscard]] const net::endpoint& local() const noexcept { return local_; }

    // Around a fork-mode worker's fork(), as the balancer's acceptors are.
    void pause() {
        if (acceptor_) acceptor_->pause();
    }
    void resume() {
        if (acceptor_) acceptor_->resume();
    }

    // In a fork-mode worker, still inside fork(): the socket and the scrapers are the primary's.
    CLUSTER_DECL void close_in_forked_child() const noexcept;

private:
    CLUSTER_DECL void admit(unique_fd client);

    // Reads the request head, answers it, and closes; within the bounds above whatever the client does.
    static CLUSTER_DECL io::task<void> serve(metrics_endpoint& self, unique_fd client);

    overload_counts& counts_;
    unique_fd socket_;
    net::endpoint local_;
    std::shared_ptr<detail::acceptor> acceptor_;
    page_function page_;
    io::scope* tasks_ = nullptr;
    std::set<int> clients_;  // being served
};

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/metrics_endpoint.ipp>
#endif
