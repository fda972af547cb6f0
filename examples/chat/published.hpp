// chat's messages on Redis: the channel every instance publishes to and subscribes to, and a
// payload's form there — the publishing instance's name, a newline, the text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace chat {

inline constexpr std::string_view channel = "chat";

inline std::string published_payload(std::string_view instance, std::string_view text) {
    std::string payload;
    payload.reserve(instance.size() + 1 + text.size());
    payload.append(instance).append(1, '\n').append(text);
    return payload;
}

struct published {
    std::string_view instance;
    std::string_view text;
};

// Nothing for a payload of another form: someone else's use of the channel.
inline std::optional<published> parse_published(std::string_view payload) {
    const auto newline = payload.find('\n');
    if (newline == std::string_view::npos) return std::nullopt;
    return published{payload.substr(0, newline), payload.substr(newline + 1)};
}

}  // namespace chat
