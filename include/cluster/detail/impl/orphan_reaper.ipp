// cluster::detail::orphan_reaper's definitions: the children listed from /proc, the orphans
// among them reaped. Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/detail/orphan_reaper.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace cluster::detail {

CLUSTER_DECL bool reaps_orphans(std::optional<bool> asked) noexcept { return asked.value_or(::getpid() == 1); }

// /proc/self/task/<tid>/children lists them (a kernel with CONFIG_PROC_CHILDREN, as every
// distribution's has): unlike a waitid(P_ALL, WNOWAIT) peek, which shows the same zombie of
// our own again and again, it shows every child, so each can be waited for by its pid.
CLUSTER_DECL std::vector<pid_t> children_of_this_process() {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
        std::ifstream in(task.path() / "children");
        for (pid_t pid; in >> pid;) pids.push_back(pid);
    }
    return pids;
}

CLUSTER_DECL orphan_reaper::~orphan_reaper() {
    if (made_subreaper_) ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
}

CLUSTER_DECL void orphan_reaper::start() {
    int already = 0;
    if (::getpid() != 1 && (::prctl(PR_GET_CHILD_SUBREAPER, &already, 0, 0, 0) != 0 || !already)) {
        if (::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
            throw std::system_error(errno, std::system_category(), "cluster: prctl(PR_SET_CHILD_SUBREAPER)");
        made_subreaper_ = true;
    }
    sigchld_.emplace(std::initializer_list<int>{SIGCHLD});
}

CLUSTER_DECL io::task<void> orphan_reaper::run(orphan_reaper& self) {
    // Read the signal first, then look: a child that ends meanwhile sends another.
    self.reap_ended();
    for (;;) {
        auto signo = co_await self.sigchld_->next();
        if (!signo) co_return;
        self.reap_ended();
    }
}

CLUSTER_DECL void orphan_reaper::reap_ended() const {
    for (const pid_t pid : children_of_this_process()) {
        if (own_(pid)) continue;
        while (::waitpid(pid, nullptr, WNOHANG) < 0 && errno == EINTR) {}
    }
}

CLUSTER_DECL void orphan_reaper::close_in_forked_child() const noexcept {
    if (sigchld_) ::close(sigchld_->native_handle());
}

}  // namespace cluster::detail
