// cluster::detail::upgrader's definitions, which need the whole supervisor. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <span>
#include <string_view>

#include <cluster/detail/upgrade.hpp>
#include <cluster/io/ops.hpp>
#include <cluster/io/timeout.hpp>
#include <cluster/io/transfer.hpp>
#include <cluster/io/when_all.hpp>

namespace cluster::detail {

namespace upgrade_detail {

// The successor's argv and envp, built before fork: the child must not allocate. LISTEN_PID
// and WATCHDOG_PID name the successor itself, which only the child knows: their values are
// blanks the child fills in.
struct successor_image {
    static constexpr std::size_t pid_digits = 20;

    std::string path;
    std::vector<std::string> strings;
    std::vector<char*> argv, envp;
    std::vector<char*> pid_blanks;  // where each *_PID value goes, in strings

    successor_image(const std::vector<std::string>& args, const std::vector<handed_socket>& sockets,
                    std::map<std::string, std::string> extra_env)
        : path(self_exe()) {
        std::map<std::string, std::string> env;
        for (char** e = environ; e && *e; ++e) {
            std::string_view entry(*e);
            const auto eq = entry.find('=');
            if (eq != std::string_view::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
        }
        for (auto& [name, value] : extra_env) env[name] = std::move(value);
        std::string names;
        for (const auto& s : sockets) names += (names.empty() ? "" : ":") + s.name;
        env["LISTEN_FDS"] = std::to_string(sockets.size());
        env["LISTEN_FDNAMES"] = names;
        env[predecessor_fd_env] = std::to_string(3 + sockets.size());
        std::vector<std::string> blanks{"LISTEN_PID"};
        env.erase("LISTEN_PID");
        if (env.contains("WATCHDOG_USEC")) {
            env.erase("WATCHDOG_PID");
            blanks.push_back("WATCHDOG_PID");
        }
        strings = args.empty() ? std::vector<std::string>{path} : args;
        const std::size_t argc = strings.size();
        for (const auto& [name, value] : env) strings.push_back(name + "=" + value);
        for (const auto& b : blanks) strings.push_back(b + "=" + std::string(pid_digits, '\0'));
        for (std::size_t i = 0; i < strings.size(); ++i) (i < argc ? argv : envp).push_back(strings[i].data());
        for (std::size_t i = 0; i < blanks.size(); ++i)
            pid_blanks.push_back(strings[strings.size() - blanks.size() + i].data() + blanks[i].size() + 1);
        argv.push_back(nullptr);
        envp.push_back(nullptr);
    }

    // In the child: its pid into the blanks, without allocating.
    void fill_pid(pid_t pid) const noexcept {
        char digits[pid_digits];
        std::size_t n = 0;
        for (auto v = static_cast<unsigned long>(pid); n == 0 || v != 0; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
        for (char* blank : pid_blanks) {
            for (std::size_t i = 0; i < n; ++i) blank[i] = digits[n - 1 - i];
            blank[n] = '\0';
        }
    }
};

// In the child: the sockets on fds 3, 4, … and the link after them, nothing else kept (every
// other descriptor of the primary's is close-on-exec), signals as a fresh process has them,
// then the successor's image. Tells the predecessor if execve fails.
[[noreturn]] inline void become_successor(const successor_image& image, const std::vector<handed_socket>& sockets,
                                          int link) noexcept {
    const int count = static_cast<int>(sockets.size());
    const int above = 3 + count + 1;  // where the fds wait while 3… are rearranged
    int moved[256];
    for (int i = 0; i < count; ++i) moved[i] = ::fcntl(sockets[static_cast<std::size_t>(i)].fd, F_DUPFD_CLOEXEC, above);
    const int moved_link = ::fcntl(link, F_DUPFD_CLOEXEC, above);
    for (int i = 0; i < count; ++i) ::dup2(moved[i], 3 + i);  // dup2 clears close-on-exec on the copy
    const int link_fd = 3 + count;
    ::dup2(moved_link, link_fd);
    image.fill_pid(::getpid());
    for (int sig = 1; sig < NSIG; ++sig) {
        struct sigaction current {};
        if (::sigaction(sig, nullptr, &current) == 0 && !(current.sa_flags & SA_SIGINFO) &&
            current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN)
            ::signal(sig, SIG_DFL);
    }
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(image.path.c_str(), image.argv.data(), image.envp.data());
    const successor_word failed{successor_word::what::exec_failed, errno};
    (void)!::write(link_fd, &failed, sizeof failed);
    ::_exit(127);
}

}  // namespace upgrade_detail

CLUSTER_DECL void upgrader::upgrade_on_signal() {
    if (auto why = refusal(); !why.empty()) {
        std::fprintf(stderr, "cluster: upgrade refused: %s\n", why.c_str());
        return;
    }
    running_ = true;
    s_.tasks.spawn(upgrade(*this));
}

CLUSTER_DECL std::string upgrader::refusal() const {
    if (running_) return "an upgrade is running already";
    if (s_.stopping || s_.stopper.stop_requested()) return "the cluster is stopping";
    if (s_.rollout.reloading()) return "a reload is running";
    // Until then its workers may not listen yet: it would hand over none of its sockets.
    if (predecessor_ && !took_over_) return "this primary is an upgrade that has not taken over yet";
    const std::string& path = self_exe();
    if (::access(path.c_str(), X_OK) != 0)
        return path + " cannot be run: " + std::strerror(errno) + " (the primary is left as it was)";
    return {};
}

CLUSTER_DECL io::task<void> upgrader::upgrade(upgrader& self) {
    const auto sockets = self.s_.balancer.handover();
    unique_fd link;
    std::string what;
    auto successor = self.start_successor(sockets, link, what);
    if (!successor) {
        std::fprintf(stderr, "cluster: upgrade refused: %s: %s\n", what.c_str(), successor.error().message().c_str());
        self.running_ = false;
        co_return;
    }
    std::fprintf(stderr, "cluster: upgrade: primary %d started %s as its successor, primary %d\n", ::getpid(),
                 self_exe().c_str(), successor->pid());
    auto failure = co_await self.until_successor_ready(*successor, link.get());
    if (!failure.empty()) {
        std::fprintf(stderr, "cluster: upgrade rolled back: %s\n", failure.c_str());
        co_await self.roll_back(*successor);
        self.running_ = false;
        co_return;
    }
    const pid_t pid = successor->pid();
    successor->detach();
    self.successor_ = std::move(link);
    self.s_.balancer.handed_over(sockets);
    std::fprintf(stderr, "cluster: upgrade: primary %d is ready; primary %d stops\n", pid, ::getpid());
    self.s_.stopper.stop_for_successor(pid);
}

CLUSTER_DECL result<io::child_process> upgrader::start_successor(const std::vector<handed_socket>& sockets,
                                                                 unique_fd& link_end, std::string& what) {
    what = "cannot start " + self_exe();
    if (sockets.size() > 200) {
        what += ": more than 200 listening sockets to hand over";
        return errno_code(EMFILE);
    }
    auto link = ipc::make_socket_pair();
    if (!link) return link.error();
    const upgrade_detail::successor_image image(s_.args, sockets, s_.successor_environment());
    std::fflush(nullptr);
    sigset_t all, before;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
    auto child = io::child_process::fork();
    if (child && child->is_child()) upgrade_detail::become_successor(image, sockets, link->second.get());
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (!child) return child.error();
    link_end = std::move(link->first);
    return child;
}

CLUSTER_DECL io::task<std::string> upgrader::until_successor_ready(io::child_process& successor, int link) {
    successor_word word{};
    auto first = co_await io::when_any(io::read_exact(link, std::as_writable_bytes(std::span(&word, 1))),
                                       time_out(s_.options.ready_timeout));
    const std::string who = "the new primary (" + std::to_string(successor.pid()) + ")";
    if (first.index() == 1)
        co_return who + " was not ready within " + std::to_string(s_.options.ready_timeout.count()) + " ms";
    if (!std::get<0>(first)) {
        auto status = co_await successor.wait();
        co_return who + " ended before it was ready: " + (status ? status->to_string() : status.error().message());
    }
    if (word.said == successor_word::what::exec_failed)
        co_return "cannot run " + self_exe() + ": " + std::strerror(word.value);
    co_return std::string{};
}

CLUSTER_DECL io::task<void> upgrader::roll_back(io::child_process& successor) {
    if (!successor.running()) co_return;
    (void)successor.send_signal(SIGTERM);
    auto ended = co_await io::with_timeout(successor.wait(), s_.options.shutdown_timeout + s_.options.kill_timeout);
    if (ended) co_return;
    (void)successor.send_signal(SIGKILL);
    (void)co_await successor.wait();
}

CLUSTER_DECL void upgrader::take_predecessor_link() {
    const char* named = std::getenv(predecessor_fd_env);
    if (!named) return;
    const unsigned fd = parse_positive(named);
    ::unsetenv(predecessor_fd_env);
    struct stat st {};
    if (fd == 0 || ::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) {
        std::fprintf(stderr, "cluster: %s=%s names no socket: no predecessor to tell\n", predecessor_fd_env, named);
        return;
    }
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    predecessor_.reset(static_cast<int>(fd));
    s_.tasks.spawn(tell_predecessor(*this));
}

CLUSTER_DECL io::task<void> upgrader::tell_predecessor(upgrader& self) {
    const bool ready = co_await self.s_.cluster_ready.wait();
    if (!ready) co_return;
    // Ready means listening too: the predecessor stops accepting once told, and under
    // reuseport its other sockets close with it.
    while (self.s_.balancer.adopted_idle()) {
        auto changed = co_await self.s_.slots.next_change();
        if (!changed) co_return;
    }
    self.s_.successor_ready();
    const successor_word word{successor_word::what::ready, ::getpid()};
    (void)!::write(self.predecessor_.get(), &word, sizeof word);
    self.took_over_ = true;
    // Accepts on a shared socket wake one waiter per connection: one the predecessor was
    // cancelling as it stopped took a wake-up with it, and the connection waits in the backlog
    // for the next one to arrive. Once the predecessor is gone (its end of the link closes as
    // it exits), accepting afresh takes what waits.
    std::byte end[1];
    (void)co_await io::read(self.predecessor_.get(), std::span<std::byte>(end));
    self.predecessor_.reset();
    self.s_.balancer.pause_accepting();
    self.s_.balancer.resume_accepting();
}

}  // namespace cluster::detail
