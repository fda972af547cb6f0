// cluster::detail::control_commands' definitions, which need the whole supervisor. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <string_view>
#include <system_error>

#include <cluster/detail/control_commands.hpp>
#include <cluster/resident_memory.hpp>

namespace cluster::detail {

namespace control_status {

// User and system time from /proc/<pid>/stat, fields 14 and 15, counted after the command's
// closing parenthesis (the command may hold spaces and parentheses itself); 0 if unreadable.
inline double cpu_seconds(pid_t pid) {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    std::FILE* f = std::fopen(path, "re");
    if (!f) return 0;
    char buf[1024];
    const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const std::string_view stat(buf, n);
    const auto close = stat.rfind(')');
    if (close == std::string_view::npos) return 0;
    unsigned long long user = 0, system = 0;
    if (std::sscanf(buf + close + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &user, &system) != 2)
        return 0;
    return static_cast<double>(user + system) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

inline std::uint64_t rss_bytes(pid_t pid) {
    const auto rss = resident_memory(pid);
    return rss ? *rss : 0;
}

inline worker_state state_of(const worker_record& r) noexcept {
    if (!r.online) return worker_state::starting;
    if (r.retiring || r.disconnect_sent || r.reason != stop_reason::none) return worker_state::leaving;
    return r.ready.is_set() ? worker_state::ready : worker_state::online;
}

}  // namespace control_status

// What the supervisor can tell by itself; primary<P>::status() will give the whole snapshot.
CLUSTER_DECL cluster_status control_commands::status() {
    const auto now = std::chrono::steady_clock::now();
    cluster_status out;
    out.primary_pid = ::getpid();
    out.uptime = now - started_;
    out.workers_wanted = s_.slots.ids().size();
    out.restarts = s_.restarts;
    out.primary_cpu_seconds = control_status::cpu_seconds(out.primary_pid);
    out.primary_rss_bytes = control_status::rss_bytes(out.primary_pid);
    for (const auto& r : s_.workers.alive()) {
        worker_status w;
        w.id = r->id;
        w.slot = r->home_slot;
        w.pid = r->pid;
        w.state = control_status::state_of(*r);
        w.uptime = now - r->started;
        w.cpu_seconds = control_status::cpu_seconds(r->pid);
        w.rss_bytes = control_status::rss_bytes(r->pid);
        out.workers.push_back(w);
    }
    return out;
}

CLUSTER_DECL io::task<reload_event> control_commands::reload() { return s_.rollout.reload(); }

CLUSTER_DECL io::task<std::string> control_commands::scale(std::size_t n) {
    if (s_.stopping) co_return "the primary is stopping";
    try {
        co_await s_.rollout.scale(n);
    } catch (const std::system_error& e) {
        co_return e.what();
    }
    co_return std::string{};
}

CLUSTER_DECL void control_commands::stop() { s_.stopper.request_stop(); }

CLUSTER_DECL std::string control_commands::upgrade() {
    auto why = s_.upgrader.refusal();
    if (why.empty()) s_.upgrader.upgrade_on_signal();
    return why;
}

}  // namespace cluster::detail
