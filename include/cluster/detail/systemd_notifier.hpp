// cluster::detail::systemd_notifier: the primary's side of systemd's sd_notify protocol — the
// datagrams to $NOTIFY_SOCKET (READY, RELOADING, STOPPING, STATUS, WATCHDOG, MAINPID).
#pragma once

#include <cluster/config.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <cluster/io/task.hpp>

namespace cluster::detail {

// What systemd sets in the environment of the service's main process.
inline constexpr const char* notify_socket_env = "NOTIFY_SOCKET";
inline constexpr const char* watchdog_usec_env = "WATCHDOG_USEC";
inline constexpr const char* watchdog_pid_env = "WATCHDOG_PID";

// What `systemctl status` shows of the cluster.
struct service_status {
    std::size_t workers = 0;     // slots with a ready worker
    std::uint64_t restarts = 0;  // restarts the restart policy scheduled
    std::size_t reloaded = 0;    // a rolling reload's workers replaced so far...
    std::size_t reloading = 0;   // ...out of these; 0 when no reload runs
    bool stopping = false;
};

// "4 workers, 12 restarts", "4 workers, 12 restarts, reloading 2/4", or "stopping".
CLUSTER_DECL std::string status_text(const service_status& s);

class systemd_notifier {
public:
    // No socket: every send does nothing.
    systemd_notifier() = default;

    // From these values of NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (nullptr: unset), in
    // process `self`: the watchdog is ours if WATCHDOG_PID is unset or `self`.
    CLUSTER_DECL systemd_notifier(const char* socket, const char* watchdog_usec, const char* watchdog_pid, pid_t self);

    // From this process's environment, which no longer has the three afterwards: no worker,
    // forked or exec'd, inherits them (systemd would take a worker's READY=1 for the service's).
    static CLUSTER_DECL systemd_notifier from_environment();

    [[nodiscard]] bool enabled() const noexcept { return !socket_.empty(); }
    // NOTIFY_SOCKET and WATCHDOG_USEC as they were read ("" if unset): what a successor
    // primary (a binary upgrade's) is given to go on where this one stops.
    [[nodiscard]] const std::string& socket() const noexcept { return socket_; }
    [[nodiscard]] const std::string& watchdog_usec() const noexcept { return watchdog_usec_; }
    // Half of WATCHDOG_USEC when the watchdog is this process's; zero otherwise.
    [[nodiscard]] std::chrono::microseconds watchdog_interval() const noexcept { return watchdog_interval_; }

    // `state` (newline-separated assignments) as one datagram; true if it went. Only the first
    // failure is logged (to stderr): a service without its systemd runs on, quietly.
    CLUSTER_DECL bool send(std::string_view state);

    // READY=1: the cluster serves (first, or again after a reload).
    CLUSTER_DECL void ready(const service_status& s);
    // RELOADING=1, with the CLOCK_MONOTONIC time systemd 253+ asks for.
    CLUSTER_DECL void reloading(const service_status& s);
    CLUSTER_DECL void stopping();
    // STATUS=, unless it says what the last one said.
    CLUSTER_DECL void status(const service_status& s);
    // MAINPID=: the service's main process is `pid` from now on (a binary upgrade's successor).
    CLUSTER_DECL void main_pid(pid_t pid);
    // MAINPID=pid, and then silence: a binary upgrade's successor is the service from now on,
    // and this primary's graceful stop (STOPPING=1) is not the service's.
    void hand_over(pid_t pid) {
        main_pid(pid);
        handed_over_ = true;
    }

    // WATCHDOG=1 now, then every watchdog_interval() for as long as the loop running it turns:
    // a stalled loop stops it, and systemd restarts the service. Ends when asked to stop.
    static CLUSTER_DECL io::task<void> keep_watchdog(systemd_notifier& self);

private:
    // Logs the first failure only.
    CLUSTER_DECL void report(std::string_view what, std::string_view why);
    // `state`, then STATUS=: the status is the last sent once it went.
    CLUSTER_DECL void send_with_status(std::string state, const service_status& s);

    std::string socket_;
    bool handed_over_ = false;
    std::string watchdog_usec_;
    std::chrono::microseconds watchdog_interval_{0};
    std::string last_status_;
    bool failure_logged_ = false;
};

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/systemd_notifier.ipp>
#endif
