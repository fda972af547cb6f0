// cluster::detail::log_file's definitions: the file opened onto stdout and stderr, and opened
// again. Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/detail/log_file.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>

#include <cluster/detail/log_line.hpp>
#include <cluster/error.hpp>

namespace cluster::detail {

CLUSTER_DECL log_file::log_file(const log_options& o) : path_(o.file), format_(o.format) {
    if (path_.empty()) return;
    if (const auto failed = open_onto_stdio())
        throw std::system_error(failed, "cluster: cannot open the log file " + path_);
}

CLUSTER_DECL void log_file::reopen() noexcept {
    if (path_.empty()) return;
    if (const auto failed = open_onto_stdio()) say_not_reopened(failed);
}

CLUSTER_DECL std::error_code log_file::open_onto_stdio() const noexcept {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) return errno_code(errno);
    // What the primary's code printed and stdio still buffers belongs to the file it was
    // printed for.
    std::fflush(stdout);
    std::fflush(stderr);
    // dup2 replaces each descriptor at once: a write never finds stdout closed, and one
    // already under way finishes in the old file.
    const bool moved = ::dup2(fd, STDOUT_FILENO) >= 0 && ::dup2(fd, STDERR_FILENO) >= 0;
    const int error = errno;
    // A primary started with stdout or stderr closed may have been given one of them.
    if (fd > STDERR_FILENO) ::close(fd);
    return moved ? std::error_code{} : errno_code(error);
}

CLUSTER_DECL void log_file::say_not_reopened(std::error_code why) const noexcept {
    try {
        const std::string what =
            "cluster: cannot reopen the log file " + path_ + " (" + why.message() + "): still writing to the old one";
        std::string line;
        append_log_line(line, format_, line_source{0, 0, ::getpid(), stdio_stream::err}, what, line_end::newline,
                        std::chrono::system_clock::now());
        (void)!::write(STDERR_FILENO, line.data(), line.size());
    } catch (...) {  // out of memory for the message: the log goes on without it
    }
}

}  // namespace cluster::detail
