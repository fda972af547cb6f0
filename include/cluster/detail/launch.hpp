// cluster::detail::launch(): starts one worker process, forked or exec'd, with its end of
// the channel, the primary's options applied in the child, and setup failures reported back.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/detail/cpu_pin.hpp>
#include <cluster/error.hpp>
#include <cluster/io/child_process.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/options.hpp>
#include <cluster/result.hpp>
#include <cluster/role.hpp>
#include <cluster/unique_fd.hpp>

extern char** environ;

namespace cluster::detail {

// The program this process runs, as the path it had when first asked (primary<P> asks at
// construction). Exec mode runs what is at that path when a worker starts, so replacing the
// file and reloading upgrades the workers. If the file was gone already, /proc/self/exe
// still names the primary's own image.
inline const std::string& self_exe() {
    static const std::string path = [] {
        std::string p(PATH_MAX, '\0');
        const ssize_t n = ::readlink("/proc/self/exe", p.data(), p.size());
        if (n <= 0 || static_cast<std::size_t>(n) == p.size()) return std::string("/proc/self/exe");
        p.resize(static_cast<std::size_t>(n));
        if (p.ends_with(" (deleted)") || ::access(p.c_str(), X_OK) != 0) return std::string("/proc/self/exe");
        return p;
    }();
    return path;
}

// The program an exec-mode worker runs.
inline const std::string& exec_path(const primary_options& o) { return o.exec.empty() ? self_exe() : o.exec; }

// Where in the child's setup a failure happened; sent back over the status pipe.
enum class launch_stage : std::int32_t { death_signal = 1, stdio, cwd, gid, uid, exec };

inline const char* to_string(launch_stage s) noexcept {
    switch (s) {
    case launch_stage::death_signal: return "prctl(PR_SET_PDEATHSIG)";
    case launch_stage::stdio: return "redirecting stdout/stderr";
    case launch_stage::cwd: return "chdir to the cwd option";
    case launch_stage::gid: return "setgid to the gid option";
    case launch_stage::uid: return "setuid to the uid option";
    case launch_stage::exec: return "execve of the exec option";
    }
    return "setup";
}

// What the failed step was about, for the error message: " (/the/path)", or nothing.
inline std::string stage_subject(launch_stage s, const primary_options& o) {
    switch (s) {
    case launch_stage::cwd: return " (" + o.cwd + ")";
    case launch_stage::exec: return " (" + exec_path(o) + ")";
    case launch_stage::uid: return o.uid ? " (" + std::to_string(*o.uid) + ")" : "";
    case launch_stage::gid: return o.gid ? " (" + std::to_string(*o.gid) + ")" : "";
    default: return "";
    }
}

struct launch_failure {
    launch_stage stage;
    std::int32_t error;
};

// A worker process just started, from the primary's side.
struct launched {
    io::child_process child;
    unique_fd link;       // the primary's end of the channel
    stdio_options stdio;  // where its stdout and stderr went
    unique_fd out;        // relay or pipe: the worker's stdout, to read
    unique_fd err;        // relay or pipe: the worker's stderr, to read
    unique_fd status;     // reads a launch_failure, or end of file once the worker started; none
                          // when nothing could fail
};

// Where the worker's stdout and stderr go: stdio, or {relay, relay} for silent, Node's name for
// it. Both set at once is invalid_argument: which one was meant?
inline result<stdio_options> chosen_stdio(const primary_options& o) {
    if (!o.silent) return o.stdio;
    if (o.stdio.out != output_mode::inherit || o.stdio.err != output_mode::inherit)
        return std::make_error_code(std::errc::invalid_argument);
    stdio_options relayed = o.stdio;
    relayed.out = relayed.err = output_mode::relay;
    return relayed;
}

inline result<std::array<unique_fd, 2>> cloexec_pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return errno_code(errno);
    return std::array<unique_fd, 2>{unique_fd(p[0]), unique_fd(p[1])};
}

// One output stream of a worker's: what the worker's stdout or stderr becomes (none: the
// primary's own, inherited) and the end the primary reads (relay and pipe).
struct output_ends {
    unique_fd worker, primary;
};

inline result<output_ends> output_ends_for(output_mode m) {
    switch (m) {
    case output_mode::inherit: return output_ends{};
    case output_mode::discard: {
        unique_fd null(::open("/dev/null", O_WRONLY | O_CLOEXEC));
        if (!null) return errno_code(errno);
        return output_ends{std::move(null), {}};
    }
    case output_mode::relay:
    case output_mode::pipe: {
        auto p = cloexec_pipe();
        if (!p) return p.error();
        return output_ends{std::move((*p)[1]), std::move((*p)[0])};
    }
    }
    return std::make_error_code(std::errc::invalid_argument);
}

// argv and envp for execve, built before fork: the child must not allocate.
struct exec_image {
    std::string path;
    std::vector<std::string> strings;
    std::vector<char*> argv, envp;

    exec_image(const primary_options& o, const std::vector<std::string>& primary_args, unsigned id, int link_fd) {
        path = exec_path(o);
        const std::string arg0 = o.exec.empty() && !primary_args.empty() ? primary_args.front() : path;
        std::vector<std::string> args{arg0};
        if (o.args)
            args.insert(args.end(), o.args->begin(), o.args->end());
        else if (!primary_args.empty())
            args.insert(args.end(), primary_args.begin() + 1, primary_args.end());
        std::map<std::string, std::string> env;
        for (char** e = environ; e && *e; ++e) {
            std::string_view entry(*e);
            const auto eq = entry.find('=');
            if (eq != std::string_view::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
        }
        for (const auto& [name, value] : o.env) env[name] = value;
        env[worker_id_env] = std::to_string(id);
        env[channel_fd_env] = std::to_string(link_fd);
        strings.reserve(args.size() + env.size());
        for (auto& a : args) strings.push_back(std::move(a));
        const std::size_t argc = strings.size();
        for (const auto& [name, value] : env) strings.push_back(name + "=" + value);
        for (std::size_t i = 0; i < strings.size(); ++i) (i < argc ? argv : envp).push_back(strings[i].data());
        argv.push_back(nullptr);
        envp.push_back(nullptr);
    }
};

// In the child: applies the options, or reports what failed and exits.
class child_setup {
public:
    child_setup(const primary_options& o, int status_fd, pid_t primary) noexcept
        : o_(o), status_(status_fd), primary_(primary) {}

    void apply(int out_fd, int err_fd) const noexcept {
        // The primary may die between fork() and prctl(); then nobody would send the signal.
        if (::prctl(PR_SET_PDEATHSIG, o_.death_signal) != 0) fail(launch_stage::death_signal);
        if (::getppid() != primary_) ::_exit(1);
        // A worker starts with the primary's handlers back to the default, as exec would
        // leave them, and then with nothing blocked (the primary blocks what its signalfd
        // reads). Everything is blocked until then (see launch()): a signal in between waits,
        // and then meets the default, never a primary's handler running in the worker.
        reset_handlers();
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if ((out_fd >= 0 && ::dup2(out_fd, STDOUT_FILENO) < 0) || (err_fd >= 0 && ::dup2(err_fd, STDERR_FILENO) < 0))
            fail(launch_stage::stdio);
        if (!o_.cwd.empty() && ::chdir(o_.cwd.c_str()) != 0) fail(launch_stage::cwd);
        if (o_.gid) {
            // Root dropping to a group keeps no supplementary groups of root's.
            if (::geteuid() == 0 && ::setgroups(0, nullptr) != 0) fail(launch_stage::gid);
            if (::setgid(*o_.gid) != 0) fail(launch_stage::gid);
        }
        if (o_.uid && ::setuid(*o_.uid) != 0) fail(launch_stage::uid);
    }

    [[noreturn]] void exec(exec_image& image, int link_fd) const noexcept {
        const int flags = ::fcntl(link_fd, F_GETFD);
        if (flags < 0 || ::fcntl(link_fd, F_SETFD, flags & ~FD_CLOEXEC) != 0) fail(launch_stage::exec);
        // The program starts with SIGPIPE's default, as a child libuv spawns does, whatever
        // the primary had: execve resets a handler but keeps SIG_IGN, and a program that is
        // not a cluster worker (the exec option) expects the default. One that is ignores it
        // again as it starts (see run_worker_process).
        ::signal(SIGPIPE, SIG_DFL);
        ::execve(image.path.c_str(), image.argv.data(), image.envp.data());
        fail(launch_stage::exec);
    }

    static void reset_handlers() noexcept {
        for (int sig = 1; sig < NSIG; ++sig) {
            struct sigaction current {};
            if (::sigaction(sig, nullptr, &current) != 0) continue;
            const bool caught = (current.sa_flags & SA_SIGINFO)
                                    ? current.sa_sigaction != nullptr
                                    : current.sa_handler != SIG_DFL && current.sa_handler != SIG_IGN;
            if (caught) ::signal(sig, SIG_DFL);
        }
    }

    [[noreturn]] void fail(launch_stage stage) const noexcept {
        const launch_failure f{stage, errno};
        (void)!::write(status_, &f, sizeof f);
        ::_exit(127);
    }

private:
    const primary_options& o_;
    int status_;
    pid_t primary_;
};

// Forks a worker. In exec mode the child execs; in fork mode it calls
// run_worker(link) and exits with what it returns; run_worker must first close
// the primary's own descriptors that the child inherited. With a pin, the child runs on its
// CPU alone from before the worker's code (or the program exec'd) starts.
template <class RunWorker>
result<launched> launch(const primary_options& o, const std::vector<std::string>& primary_args, unsigned id,
                        const std::optional<cpu_pin>& pin, RunWorker&& run_worker) {
    auto link = ipc::make_socket_pair();  // {the primary's end, the worker's end}
    if (!link) return link.error();
    if (o.death_signal <= 0 || o.death_signal >= NSIG) return errno_code(EINVAL);
    // A plain fork-mode child has no step left that can fail: nobody need wait to hear so,
    // and fork() returns as soon as the process exists.
    const bool may_fail = o.mode == start_mode::exec || !o.cwd.empty() || o.uid || o.gid;
    std::array<unique_fd, 2> status;
    if (may_fail) {
        auto made = cloexec_pipe();
        if (!made) return made.error();
        status = std::move(*made);
    }
    auto stdio = chosen_stdio(o);
    if (!stdio) return stdio.error();
    auto out = output_ends_for(stdio->out);
    if (!out) return out.error();
    auto err = output_ends_for(stdio->err);
    if (!err) return err.error();
    std::optional<exec_image> image;
    if (o.mode == start_mode::exec) image.emplace(o, primary_args, id, link->second.get());
    const std::string pin_warning = pin ? pin->warning_for(id) : std::string();

    // Buffered output would otherwise be written twice, by the primary and by the worker.
    std::fflush(nullptr);
    const pid_t primary = ::getpid();
    sigset_t all, before;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
    auto child = io::child_process::fork();
    if (!child || !child->is_child()) ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (!child) return child.error();
    if (child->is_child()) {
        const child_setup setup(o, status[1].get(), primary);
        setup.apply(out->worker.get(), err->worker.get());
        // After stdio: a warning goes where the worker's stderr goes.
        if (const int failed = pin ? pin->apply() : 0) cpu_pin::warn(pin_warning, failed);
        if (image) setup.exec(*image, link->second.get());
        for (int fd : {link->first.get(), status[0].get(), out->primary.get(), out->worker.get(), err->primary.get(),
                       err->worker.get(), status[1].get()})
            if (fd >= 0) ::close(fd);
        for (const auto& [name, value] : o.env) ::setenv(name.c_str(), value.c_str(), 1);
        const int code = run_worker(unique_fd(link->second.release()));
        std::fflush(nullptr);
        ::_exit(code);
    }
    return launched{std::move(*child),       std::move(link->first),  *stdio,
                    std::move(out->primary), std::move(err->primary), std::move(status[0])};
}

}  // namespace cluster::detail
