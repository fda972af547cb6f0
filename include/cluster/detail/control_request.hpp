// cluster::detail::control_request: what a control socket client asks for — one line, a
// command and its argument — read from the line and checked against the control socket's limits.
#pragma once

#include <charconv>
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace cluster::detail {

// The most workers `scale` may ask for: past this a typo (100000 for 10) would fork until
// the machine gives out, taking the running workers with it.
inline constexpr std::size_t control_max_workers = 1024;

enum class control_command { status, reload, scale, stop, upgrade, logs };

struct control_request {
    control_command command = control_command::status;
    std::size_t workers = 0;  // scale: how many to keep
};

// Why a line is no request, in words a user can act on.
struct control_refusal {
    std::string error;
};

namespace control_parsing {

inline std::string_view trimmed(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// The first word of `s`, which loses it and the blanks after it.
inline std::string_view next_word(std::string_view& s) noexcept {
    s = trimmed(s);
    const auto end = s.find_first_of(" \t");
    auto word = s.substr(0, end);
    s = end == std::string_view::npos ? std::string_view{} : trimmed(s.substr(end));
    return word;
}

inline std::variant<control_request, control_refusal> scale_request(std::string_view rest) {
    const std::string limit = "scale takes a number of workers from 1 to " + std::to_string(control_max_workers);
    const auto word = next_word(rest);
    if (word.empty() || !rest.empty()) return control_refusal{limit};
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(word.data(), word.data() + word.size(), n);
    if (ec == std::errc::result_out_of_range) return control_refusal{limit + ", not " + std::string(word)};
    if (ec != std::errc{} || end != word.data() + word.size()) return control_refusal{limit};
    if (n == 0 || n > control_max_workers) return control_refusal{limit + ", not " + std::to_string(n)};
    return control_request{control_command::scale, n};
}

}  // namespace control_parsing

inline const char* to_string(control_command c) noexcept {
    switch (c) {
    case control_command::status: return "status";
    case control_command::reload: return "reload";
    case control_command::scale: return "scale";
    case control_command::stop: return "stop";
    case control_command::upgrade: return "upgrade";
    case control_command::logs: return "logs";
    }
    return "unknown";
}

// One request line, its newline taken off: `status`, `reload`, `scale N`, `stop`, `upgrade`
// or `logs`.
inline std::variant<control_request, control_refusal> parse_control_request(std::string_view line) {
    using namespace control_parsing;
    const auto word = next_word(line);
    if (word == "scale") return scale_request(line);
    for (auto c : {control_command::status, control_command::reload, control_command::stop, control_command::upgrade,
                   control_command::logs}) {
        if (word != to_string(c)) continue;
        if (!line.empty()) return control_refusal{std::string(word) + " takes no argument"};
        return control_request{c, 0};
    }
    return control_refusal{"unknown command; the commands are status, reload, scale N, stop, upgrade and logs"};
}

}  // namespace cluster::detail
