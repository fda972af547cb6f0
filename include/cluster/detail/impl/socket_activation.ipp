// cluster::detail's socket activation definitions. Inline in a header-only build; compiled once
// into cluster::core otherwise.
#pragma once

#include <cluster/detail/socket_activation.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include <cluster/error.hpp>
#include <cluster/net/endpoint.hpp>

namespace cluster::detail {

namespace activation {

inline std::optional<long long> decimal(std::string_view text) noexcept {
    long long n = 0;
    const auto [at, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (text.empty() || ec != std::errc{} || at != text.data() + text.size()) return std::nullopt;
    return n;
}

inline std::vector<std::string> split(std::string_view text) {
    std::vector<std::string> out;
    for (;;) {
        const auto colon = text.find(':');
        out.emplace_back(text.substr(0, colon));
        if (colon == std::string_view::npos) return out;
        text.remove_prefix(colon + 1);
    }
}

// The names to give `n` sockets: each usable one of `names`, else "".
inline std::vector<std::string> usable_names(const char* names, std::size_t n) {
    std::vector<std::string> out(n);
    if (!names) return out;
    auto given = split(names);
    if (given.size() != n) return out;
    for (std::size_t i = 0; i < n; ++i) {
        const bool unique = std::count(given.begin(), given.end(), given[i]) == 1;
        if (unique && net::endpoint::parse("fd:" + given[i])) out[i] = given[i];
    }
    return out;
}

}  // namespace activation

CLUSTER_DECL result<std::vector<activated_socket>> parse_listen_fds(const char* pid, const char* fds,
                                                                    const char* names, pid_t self,
                                                                    std::string& what) {
    std::vector<activated_socket> out;
    if (!pid || !fds) return out;
    const auto for_pid = activation::decimal(pid);
    if (!for_pid || *for_pid <= 0) {
        what = std::string(listen_pid_env) + "=\"" + pid + "\" is not a process id";
        return errno_code(EINVAL);
    }
    if (*for_pid != self) return out;
    const auto count = activation::decimal(fds);
    if (!count || *count < 0 || *count > INT_MAX - listen_fds_start) {
        what = std::string(listen_fds_env) + "=\"" + fds + "\" is not a number of descriptors";
        return errno_code(EINVAL);
    }
    auto given = activation::usable_names(names, static_cast<std::size_t>(*count));
    for (int i = 0; i < static_cast<int>(*count); ++i)
        out.push_back(activated_socket{listen_fds_start + i, std::move(given[static_cast<std::size_t>(i)])});
    return out;
}

CLUSTER_DECL result<std::vector<activated_socket>> take_listen_fds(std::string& what) {
    auto passed = parse_listen_fds(std::getenv(listen_pid_env), std::getenv(listen_fds_env),
                                   std::getenv(listen_fdnames_env), ::getpid(), what);
    ::unsetenv(listen_pid_env);
    ::unsetenv(listen_fds_env);
    ::unsetenv(listen_fdnames_env);
    return passed;
}

}  // namespace cluster::detail
