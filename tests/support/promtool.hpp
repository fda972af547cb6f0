// support::promtool_check: a metrics page checked by promtool, Prometheus's own parser and
// linter, where Debian's prometheus package has installed it.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace support {

struct promtool_verdict {
    bool accepted = false;
    std::string said;  // promtool's output: what it found wrong
};

// Empty when promtool is not installed: the caller WARNs and skips.
inline std::optional<promtool_verdict> promtool_check(const std::string& page) {
    if (::access("/usr/bin/promtool", X_OK) != 0) return std::nullopt;
    char path[] = "/tmp/cluster-metrics-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) return promtool_verdict{false, "mkstemp failed"};
    const bool written = ::write(fd, page.data(), page.size()) == static_cast<ssize_t>(page.size());
    ::close(fd);
    promtool_verdict verdict;
    FILE* p =
        written ? ::popen(("/usr/bin/promtool check metrics < " + std::string(path) + " 2>&1").c_str(), "r") : nullptr;
    if (p) {
        char buf[256];
        while (std::fgets(buf, sizeof buf, p)) verdict.said += buf;
        const int status = ::pclose(p);
        verdict.accepted = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    } else {
        verdict.said = "could not run promtool";
    }
    ::unlink(path);
    return verdict;
}

}  // namespace support
