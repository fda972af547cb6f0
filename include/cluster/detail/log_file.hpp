// cluster::detail::log_file: the file the primary's stdout and stderr go to (log_options::file),
// opened as the primary starts and reopened at the same path on SIGUSR1, for logrotate.
#pragma once

#include <cluster/config.hpp>

#include <string>
#include <system_error>

#include <cluster/options.hpp>

namespace cluster::detail {

// The file becomes fds 1 and 2 rather than a descriptor the relays write to: so that the
// primary's own prints, cluster's messages and inherit-mode workers (which share those fds)
// all go there too, and a program that moves its primary's output needs no other setting.
class log_file {
public:
    // Opens o.file (O_APPEND, created 0640) onto stdout and stderr; nothing when it is empty.
    // Throws std::system_error naming the file if it cannot be opened.
    CLUSTER_DECL explicit log_file(const log_options& o);

    // The file at the path now — logrotate's new one once it renamed the old — replaces the
    // one written so far: what was written before goes to the old file, what comes after to
    // the new, each write whole. One that cannot be opened keeps the old, which says so in a
    // line of its own. Nothing when there is no log file.
    CLUSTER_DECL void reopen() noexcept;

    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    // Opens the path onto stdout and stderr.
    CLUSTER_DECL std::error_code open_onto_stdio() const noexcept;

    // A line of the primary's own, in the log's format, on the file it still writes.
    CLUSTER_DECL void say_not_reopened(std::error_code why) const noexcept;

    std::string path_;
    log_format format_;
};

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/log_file.ipp>
#endif
