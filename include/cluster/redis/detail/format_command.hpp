// cluster::redis::detail::format_command: a command's arguments (strings, or integers spelled
// in decimal) as the RESP bytes hiredis's formatter makes of them.
#pragma once

#include <hiredis/hiredis.h>

#include <array>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <cluster/redis/error.hpp>
#include <cluster/result.hpp>

namespace cluster::redis::detail {

inline result<std::string> format_argv(std::span<const std::string_view> args) {
    if (args.empty()) return errc::invalid_command;
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (auto a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    char* formatted = nullptr;
    const int n = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), argv.data(), lengths.data());
    if (n < 0 || !formatted) return errc::invalid_command;
    std::unique_ptr<char, decltype(&redisFreeCommand)> owned(formatted, &redisFreeCommand);
    return std::string(formatted, static_cast<std::size_t>(n));
}

// An integer argument in decimal, kept alive for the call that formats it.
class argument {
public:
    template <std::integral I>
    argument(I value) noexcept {  // NOLINT: implicit, to pass integers as they are
        auto [end, ec] = std::to_chars(digits_.data(), digits_.data() + digits_.size(), value);
        (void)ec;  // 24 bytes hold any 64-bit integer
        view_ = {digits_.data(), static_cast<std::size_t>(end - digits_.data())};
    }
    template <class S>
        requires std::convertible_to<const S&, std::string_view> && (!std::integral<S>)
    argument(const S& text) noexcept : view_(text) {}  // NOLINT: implicit
    argument(const argument&) = delete;
    argument& operator=(const argument&) = delete;

    [[nodiscard]] std::string_view view() const noexcept { return view_; }

private:
    std::array<char, 24> digits_{};
    std::string_view view_;
};

template <class... Args>
result<std::string> format_command(const Args&... args) {
    const argument parts[] = {argument(args)...};
    std::array<std::string_view, sizeof...(Args)> views;
    for (std::size_t i = 0; i < sizeof...(Args); ++i) views[i] = parts[i].view();
    return format_argv(views);
}

}  // namespace cluster::redis::detail
