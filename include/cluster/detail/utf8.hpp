// cluster::detail utf8: well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
// past U+10FFFF) — checked, or made so by replacing each byte that starts no character with U+FFFD.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace cluster::detail {

// The length of the well-formed character `text` starts with; 0 if it starts with none.
inline std::size_t utf8_char_length(std::string_view text) noexcept {
    if (text.empty()) return 0;
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const unsigned char c = p[0];
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the bounds of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0) lo = 0xA0;  // overlong
        if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0) lo = 0x90;  // overlong
        if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
        return 0;
    }
    if (text.size() <= n || p[1] < lo || p[1] > hi) return 0;
    for (std::size_t i = 2; i <= n; ++i)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n + 1;
}

inline bool valid_utf8(std::string_view text) noexcept {
    while (!text.empty()) {
        if (static_cast<unsigned char>(text.front()) < 0x80) {
            text.remove_prefix(1);
            continue;
        }
        const std::size_t n = utf8_char_length(text);
        if (n == 0) return false;
        text.remove_prefix(n);
    }
    return true;
}

// Appends `text`, each byte of it that starts no well-formed character replaced by U+FFFD.
inline void append_utf8_replacing(std::string& out, std::string_view text) {
    while (!text.empty()) {
        const std::size_t n = utf8_char_length(text);
        if (n == 0) {
            out.append("\xEF\xBF\xBD");
            text.remove_prefix(1);
        } else {
            out.append(text.substr(0, n));
            text.remove_prefix(n);
        }
    }
}

}  // namespace cluster::detail
