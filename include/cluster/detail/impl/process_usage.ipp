// cluster::detail::process_usage's definitions: procfs read with plain reads (it answers from
// memory, so the loop never stalls on it). Inline in a header-only build; compiled once otherwise.
#pragma once

#include <cluster/detail/process_usage.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

#include <cluster/error.hpp>
#include <cluster/resident_memory.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

namespace process_usage_parts {

// utime and stime are the 14th and 15th fields; the 2nd, the command's name in parentheses,
// may hold spaces and parentheses itself, so fields are counted from the last ')'.
inline constexpr int utime_after_name = 11;

inline bool next_number(std::string_view& rest, unsigned long long& value) noexcept {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
    if (ec != std::errc{}) return false;
    rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
    return true;
}

inline void skip_field(std::string_view& rest) noexcept {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const auto space = rest.find(' ');
    rest.remove_prefix(space == std::string_view::npos ? rest.size() : space);
}

inline result<std::string> read_small_file(const std::string& path) {
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return errno_code(errno);
    char text[1024];
    const ssize_t n = ::read(fd.get(), text, sizeof text);
    if (n < 0) return errno_code(errno);
    return std::string(text, static_cast<std::size_t>(n));
}

}  // namespace process_usage_parts

CLUSTER_DECL result<double> cpu_seconds_in_stat(std::string_view stat) {
    using namespace process_usage_parts;
    const auto name_end = stat.rfind(')');
    if (name_end == std::string_view::npos) return std::make_error_code(std::errc::invalid_argument);
    std::string_view rest = stat.substr(name_end + 1);
    for (int i = 0; i < utime_after_name; ++i) skip_field(rest);
    unsigned long long user = 0, system = 0;
    if (!next_number(rest, user) || !next_number(rest, system))
        return std::make_error_code(std::errc::invalid_argument);
    return static_cast<double>(user + system) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

CLUSTER_DECL result<process_usage> usage_of(pid_t pid) {
    auto stat = process_usage_parts::read_small_file("/proc/" + std::to_string(pid) + "/stat");
    if (!stat) return stat.error();
    auto cpu = cpu_seconds_in_stat(*stat);
    if (!cpu) return cpu.error();
    auto rss = resident_memory(pid);
    if (!rss) return rss.error();
    return process_usage{*cpu, static_cast<std::uint64_t>(*rss)};
}

}  // namespace cluster::detail
