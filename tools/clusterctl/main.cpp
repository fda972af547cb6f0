// clusterctl: asks a cluster primary through its control socket (primary_options::control) —
// status, reload, scale, stop, upgrade, logs, and top, a live view. See docs/control.md.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "connection.hpp"
#include "status_table.hpp"
#include "top.hpp"

namespace {

constexpr const char* usage = R"(usage: clusterctl [--socket PATH] COMMAND

Asks a cluster primary through its control socket (PATH, or $CLUSTERCTL_SOCKET).

commands:
  status [--json]   the workers: id, pid, state, uptime, restarts, CPU %, RSS,
                    connections, messages/s; --json prints the primary's JSON answer
  reload            replaces every worker, one at a time, and waits until done
  scale N           keeps N workers (1 to 1024), and waits until there are
  stop              stops the cluster gracefully, as SIGTERM does
  upgrade           starts a binary upgrade, as SIGUSR2 does
  logs              follows the workers' relayed output until Ctrl-C
  top               the status table, redrawn every second until q or Ctrl-C
)";

// The answer as JSON; a refusal or failure in it becomes the user's error.
boost::json::object checked(const std::string& line) {
    boost::system::error_code ec;
    auto value = boost::json::parse(line, ec);
    if (ec || !value.is_object()) throw clusterctl::failure("the primary's answer is not JSON: " + line);
    auto& o = value.as_object();
    const auto* ok = o.if_contains("ok");
    if (!ok || !ok->is_bool() || !ok->as_bool()) {
        const auto* e = o.if_contains("error");
        throw clusterctl::failure(e && e->is_string() ? std::string(e->as_string()) : line);
    }
    return std::move(o);
}

boost::json::object ask(const std::string& path, const std::string& request) {
    clusterctl::connection c(path, request);
    return checked(c.answer());
}

int status(const std::string& path, bool json) {
    clusterctl::connection c(path, "status");
    const auto line = c.answer();
    const auto o = checked(line);
    if (json)
        std::printf("%s\n", line.c_str());
    else
        std::fputs(clusterctl::status_table(o).c_str(), stdout);
    return 0;
}

volatile sig_atomic_t stop_following = 0;
void on_interrupt(int) { stop_following = 1; }

// Copies the followed lines to stdout until the primary ends them or Ctrl-C.
int logs(const std::string& path) {
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    clusterctl::connection c(path, "logs");
    (void)checked(c.answer());
    std::string lines = c.take_pending();
    char buf[16384];
    while (!stop_following) {
        if (!lines.empty()) {
            if (std::fwrite(lines.data(), 1, lines.size(), stdout) != lines.size() || std::fflush(stdout) != 0)
                return 0;
            lines.clear();
        }
        const ssize_t n = ::recv(c.fd(), buf, sizeof buf, 0);
        if (n == 0) {
            std::fprintf(stderr,
                         "clusterctl: the primary ended the log stream (it stopped, or this follower fell behind)\n");
            return 1;
        }
        if (n > 0) lines.assign(buf, static_cast<std::size_t>(n));
    }
    return 0;
}

int run(const std::string& path, const std::vector<std::string>& args) {
    const std::string& command = args.front();
    const auto arguments = args.size() - 1;
    if (command == "status" && (arguments == 0 || (arguments == 1 && args[1] == "--json")))
        return status(path, arguments == 1);
    if (command == "scale" && arguments == 1) {
        const auto answer = ask(path, "scale " + args[1]);
        std::printf("the cluster keeps %s workers\n", boost::json::serialize(answer.at("workers")).c_str());
        return 0;
    }
    if (arguments != 0) throw std::invalid_argument(command);
    if (command == "reload") {
        const auto answer = ask(path, "reload");
        std::printf("reloaded: %s workers replaced\n", boost::json::serialize(answer.at("replaced")).c_str());
        return 0;
    }
    if (command == "stop") {
        (void)ask(path, "stop");
        std::printf("the cluster is stopping\n");
        return 0;
    }
    if (command == "upgrade") {
        (void)ask(path, "upgrade");
        std::printf("upgrade started: the new primary takes over once its workers are ready\n");
        return 0;
    }
    if (command == "logs") return logs(path);
    if (command == "top") return clusterctl::top(path);
    throw std::invalid_argument(command);
}

}  // namespace

int main(int argc, char** argv) {
    std::string path;
    if (const char* from_env = std::getenv("CLUSTERCTL_SOCKET")) path = from_env;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            std::fputs(usage, stdout);
            return 0;
        }
        if (a == "--socket" && i + 1 < argc)
            path = argv[++i];
        else if (a.starts_with("--socket="))
            path = a.substr(9);
        else
            args.emplace_back(a);
    }
    if (args.empty() || path.empty()) {
        std::fprintf(stderr, "clusterctl: %s\n%s", path.empty() ? "no socket: give --socket PATH" : "no command",
                     usage);
        return 2;
    }
    try {
        return run(path, args);
    } catch (const clusterctl::failure& e) {
        std::fprintf(stderr, "clusterctl: %s\n", e.what());
        return 1;
    } catch (const std::invalid_argument&) {
        std::fprintf(stderr, "clusterctl: unknown command or arguments: %s\n%s", args.front().c_str(), usage);
        return 2;
    }
}
