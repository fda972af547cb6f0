// cluster::detail::systemd_notifier's definitions. Inline in a header-only build; compiled once
// into cluster::core otherwise.
#pragma once

#include <cluster/detail/systemd_notifier.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include <cluster/io/ops.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

namespace systemd {

// `text` if it is a decimal number and nothing else.
inline std::optional<std::uint64_t> decimal(const char* text) noexcept {
    if (!text || !*text) return std::nullopt;
    std::uint64_t n = 0;
    const char* end = text + std::strlen(text);
    const auto [at, ec] = std::from_chars(text, end, n);
    if (ec != std::errc{} || at != end) return std::nullopt;
    return n;
}

inline std::string plural(std::uint64_t n, const char* one) {
    return std::to_string(n) + " " + one + (n == 1 ? "" : "s");
}

// Where NOTIFY_SOCKET points: a path, or an abstract name after '@'; why not, in `why`.
inline std::optional<std::pair<sockaddr_un, socklen_t>> address(const std::string& socket, std::string& why) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (socket.front() != '/' && socket.front() != '@') {
        why = "not a Unix socket's path (\"/...\") or abstract name (\"@...\")";
        return std::nullopt;
    }
    if (socket.size() >= sizeof a.sun_path) {
        why = "longer than a Unix socket's address can be";
        return std::nullopt;
    }
    std::memcpy(a.sun_path, socket.data(), socket.size());
    auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket.size());
    if (socket.front() == '@')
        a.sun_path[0] = '\0';  // abstract: the name is the bytes after the NUL, no terminator
    else
        ++length;  // a path's terminating NUL
    return std::pair{a, length};
}

}  // namespace systemd

CLUSTER_DECL std::string status_text(const service_status& s) {
    if (s.stopping) return "stopping";
    std::string text = systemd::plural(s.workers, "worker") + ", " + systemd::plural(s.restarts, "restart");
    if (s.reloading > 0) text += ", reloading " + std::to_string(s.reloaded) + "/" + std::to_string(s.reloading);
    return text;
}

CLUSTER_DECL systemd_notifier::systemd_notifier(const char* socket, const char* watchdog_usec, const char* watchdog_pid,
                                                pid_t self)
    : socket_(socket ? socket : ""), watchdog_usec_(watchdog_usec ? watchdog_usec : "") {
    if (!enabled() || watchdog_usec_.empty()) return;
    const auto usec = systemd::decimal(watchdog_usec);
    if (!usec || *usec == 0) {
        std::fprintf(stderr, "cluster: sd_notify: %s=\"%s\": not a positive number of microseconds: no watchdog\n",
                     watchdog_usec_env, watchdog_usec_.c_str());
        return;
    }
    const auto pid = systemd::decimal(watchdog_pid);
    if (watchdog_pid && (!pid || *pid != static_cast<std::uint64_t>(self))) return;  // another process's watchdog
    watchdog_interval_ = std::chrono::microseconds(*usec / 2);
}

CLUSTER_DECL systemd_notifier systemd_notifier::from_environment() {
    systemd_notifier n(std::getenv(notify_socket_env), std::getenv(watchdog_usec_env), std::getenv(watchdog_pid_env),
                       ::getpid());
    ::unsetenv(notify_socket_env);
    ::unsetenv(watchdog_usec_env);
    ::unsetenv(watchdog_pid_env);
    return n;
}

CLUSTER_DECL bool systemd_notifier::send(std::string_view state) {
    if (!enabled() || handed_over_) return false;
    std::string why;
    const auto to = systemd::address(socket_, why);
    if (!to) {
        report(socket_, why);
        return false;
    }
    const unique_fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    // Never blocking the loop: a notification systemd has no room for is dropped.
    if (fd && ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                       reinterpret_cast<const sockaddr*>(&to->first), to->second) >= 0)
        return true;
    report(socket_, std::strerror(errno));
    return false;
}

CLUSTER_DECL void systemd_notifier::ready(const service_status& s) { send_with_status("READY=1\n", s); }

CLUSTER_DECL void systemd_notifier::reloading(const service_status& s) {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<std::uint64_t>(now.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
    send_with_status("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\n", s);
}

CLUSTER_DECL void systemd_notifier::stopping() { send_with_status("STOPPING=1\n", service_status{.stopping = true}); }

CLUSTER_DECL void systemd_notifier::status(const service_status& s) {
    if (enabled() && status_text(s) != last_status_) send_with_status({}, s);
}

CLUSTER_DECL void systemd_notifier::main_pid(pid_t pid) { send("MAINPID=" + std::to_string(pid)); }

CLUSTER_DECL io::task<void> systemd_notifier::keep_watchdog(systemd_notifier& self) {
    for (;;) {
        self.send("WATCHDOG=1");
        auto slept = co_await io::sleep_for(self.watchdog_interval_);
        if (!slept) co_return;
    }
}

CLUSTER_DECL void systemd_notifier::report(std::string_view what, std::string_view why) {
    if (std::exchange(failure_logged_, true)) return;
    std::fprintf(stderr, "cluster: sd_notify: %.*s: %.*s (said once; the service runs on)\n",
                 static_cast<int>(what.size()), what.data(), static_cast<int>(why.size()), why.data());
}

CLUSTER_DECL void systemd_notifier::send_with_status(std::string state, const service_status& s) {
    if (!enabled()) return;
    std::string text = status_text(s);
    state += "STATUS=" + text;
    if (send(state)) last_status_ = std::move(text);
}

}  // namespace cluster::detail
