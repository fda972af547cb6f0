// cluster::detail::append_json_string(): any bytes as a JSON string (RFC 8259) — quoted,
// control characters escaped, and bytes that are not UTF-8 replaced by U+FFFD.
#pragma once

#include <string>
#include <string_view>

#include <cluster/detail/utf8.hpp>

namespace cluster::detail {

// Not Boost.JSON's serializer: its definitions must be compiled once per program (a
// <boost/json/src.hpp> in one .cpp, or libboost_json), which a header-only core cannot ask
// of every program that includes it. And it writes a string's bytes as they are, where a log line
// must stay valid JSON whatever the worker printed.
inline void append_json_string(std::string& out, std::string_view bytes) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string text;
    text.reserve(bytes.size());
    append_utf8_replacing(text, bytes);
    out.push_back('"');
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out.append("\\\""); continue;
        case '\\': out.append("\\\\"); continue;
        case '\n': out.append("\\n"); continue;
        case '\r': out.append("\\r"); continue;
        case '\t': out.append("\\t"); continue;
        default: break;
        }
        if (u < 0x20 || u == 0x7F) {
            out.append("\\u00").push_back(hex[u >> 4]);
            out.push_back(hex[u & 0xF]);
        } else {
            out.push_back(c);
        }
    }
    out.push_back('"');
}

}  // namespace cluster::detail
