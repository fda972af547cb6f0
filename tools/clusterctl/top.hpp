// clusterctl top: the status table redrawn every second in the terminal, as pm2 monit does,
// until q or Ctrl-C; on a non-terminal, a plain table a second instead, until interrupted.
#pragma once

#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <boost/json.hpp>

#include "connection.hpp"
#include "status_table.hpp"

namespace clusterctl {

namespace top_detail {

inline volatile sig_atomic_t interrupted = 0;
inline void on_signal(int) { interrupted = 1; }

// The terminal without line buffering or echo, so q counts at once; as it was again at the end.
class raw_keys {
public:
    raw_keys() {
        if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &saved_) != 0) return;
        termios raw = saved_;
        raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    raw_keys(const raw_keys&) = delete;
    raw_keys& operator=(const raw_keys&) = delete;
    ~raw_keys() {
        if (active_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }
    [[nodiscard]] bool active() const noexcept { return active_; }

private:
    termios saved_{};
    bool active_ = false;
};

// Waits up to a second for a key; true if it was q (or stdin ended).
inline bool quit_pressed(bool keys) {
    pollfd p{keys ? STDIN_FILENO : -1, POLLIN, 0};
    if (::poll(&p, 1, 1000) <= 0) return false;
    char c = 0;
    const ssize_t n = ::read(STDIN_FILENO, &c, 1);
    return n == 0 || c == 'q' || c == 'Q';
}

}  // namespace top_detail

inline int top(const std::string& path) {
    using namespace top_detail;
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    const bool terminal = ::isatty(STDOUT_FILENO);
    raw_keys keys;
    if (terminal) std::fputs("\x1b[?1049h\x1b[?25l", stdout);  // the alternate screen, no cursor
    std::string error;
    while (!interrupted) {
        try {
            connection c(path, "status");
            const auto status = boost::json::parse(c.answer()).as_object();
            if (const auto* e = status.if_contains("error")) throw failure(std::string(e->as_string()));
            const auto table = status_table(status, terminal ? "\x1b[K\n" : "\n");
            if (terminal)
                std::printf("\x1b[H%s\x1b[K\nq quits%s\x1b[J", table.c_str(), keys.active() ? "" : " (Ctrl-C)");
            else
                std::printf("%s\n", table.c_str());
            std::fflush(stdout);
        } catch (const std::exception& e) {
            error = e.what();
            break;
        }
        if (quit_pressed(keys.active())) break;
    }
    if (terminal) std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    if (error.empty()) return 0;
    std::fprintf(stderr, "clusterctl: %s\n", error.c_str());
    return 1;
}

}  // namespace clusterctl
