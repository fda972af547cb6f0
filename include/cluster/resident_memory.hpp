// cluster::resident_memory(): a process's resident set size, as /proc/<pid>/statm reports
// it — what primary_options::max_memory is compared with.
#pragma once

#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <string>

#include <cluster/error.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster {

// In bytes. procfs answers from memory, so a plain read does not stall the loop.
inline result<std::size_t> resident_memory(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/statm";
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_code(errno);
    char text[128];
    const ssize_t n = ::read(fd.get(), text, sizeof text - 1);
    if (n <= 0) return errno_code(n < 0 ? errno : EIO);
    text[n] = '\0';
    unsigned long long size = 0, resident = 0;
    if (std::sscanf(text, "%llu %llu", &size, &resident) != 2) return errno_code(EIO);
    return static_cast<std::size_t>(resident) * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace cluster
