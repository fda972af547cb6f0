// cluster::detail::control_server: the primary's control socket — a Unix socket only its own
// user and root may use, answering one request a connection, bounded in bytes, time and clients.
#pragma once

#include <cluster/config.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <set>
#include <string>

#include <cluster/detail/acceptor.hpp>
#include <cluster/detail/control_request.hpp>
#include <cluster/detail/log_tap.hpp>
#include <cluster/detail/pressure_log.hpp>
#include <cluster/detail/status_rates.hpp>
#include <cluster/events.hpp>
#include <cluster/io/scope.hpp>
#include <cluster/io/task.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/overload.hpp>
#include <cluster/result.hpp>
#include <cluster/status.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

// What the control socket's commands act on: the primary, or a test's stand-in.
class control_target {
public:
    virtual ~control_target() = default;
    virtual cluster_status status() = 0;
    virtual io::task<reload_event> reload() = 0;
    // Empty once the cluster keeps n workers; else what failed.
    virtual io::task<std::string> scale(std::size_t n) = 0;
    // The graceful stop begins, as at SIGTERM.
    virtual void stop() = 0;
    // Empty once a binary upgrade started (as at SIGUSR2); else why it cannot.
    virtual std::string upgrade() = 0;
    // The workers' relayed output.
    virtual log_tap& logs() = 0;
};

struct control_limits {
    std::size_t max_request = 256;                  // a request line's bytes, its newline included
    std::chrono::milliseconds request_time{5'000};  // from connecting to the request's newline
    std::chrono::milliseconds answer_time{5'000};   // for a client to take an answer, or a log write
    std::size_t max_clients = 32;                   // connections at once, log followers included
};

class control_server {
public:
    // Listens at `path` with mode 0600, a stale socket file there replaced, a live one refused.
    // A binary upgrade's `successor` listens beside the path until take_path(): clients reach
    // the primary in charge, and the old one keeps the path if the upgrade rolls back. Throws
    // std::system_error naming the path and what failed.
    CLUSTER_DECL control_server(const std::string& path, control_target& target, overload_counts& counts,
                                bool successor, control_limits limits = {});
    control_server(const control_server&) = delete;
    control_server& operator=(const control_server&) = delete;
    // The socket file goes, unless a successor's replaced it.
    CLUSTER_DECL ~control_server();

    // The socket takes the path, over whatever socket is there: a binary upgrade's successor
    // has taken over. An error if it cannot (the socket stays where it is).
    CLUSTER_DECL result<void> take_path();

    // Around a fork-mode worker's fork(), as the balancer's acceptors.
    void pause_accepting() { acceptor_->pause(); }
    void resume_accepting() { acceptor_->resume(); }
    // In a fork-mode worker, still inside fork(): the socket and its clients are the primary's.
    CLUSTER_DECL void close_in_forked_child() const noexcept;

    [[nodiscard]] std::size_t clients() const noexcept { return open_.size(); }

private:
    CLUSTER_DECL void admit(unique_fd client);
    // Empty if the peer may use the socket; else the error it is told.
    CLUSTER_DECL std::string refusal(int client);
    static CLUSTER_DECL io::task<void> serve(control_server& self, unique_fd client);
    CLUSTER_DECL io::task<std::string> answer(const control_request& r);
    CLUSTER_DECL io::task<void> follow_logs(int client);
    CLUSTER_DECL io::task<void> copy_logs(int client, std::shared_ptr<log_tap::follower> f);
    CLUSTER_DECL io::task<bool> send_bounded(int client, std::string text);

    control_target& target_;
    control_limits limits_;
    std::string path_;
    std::string beside_;  // where the socket is bound first: path_ and this process's pid
    unique_fd socket_;
    net::socket_file file_;
    std::shared_ptr<acceptor> acceptor_;
    std::set<int> open_;  // the clients' connections
    status_history history_;
    pressure_log refused_log_;
    pressure_log busy_log_;
    io::scope tasks_;  // last: destroyed first, while everything its tasks use still exists
};

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/control_server.ipp>
#endif
