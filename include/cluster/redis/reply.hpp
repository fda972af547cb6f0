// cluster::redis::reply: one RESP reply as a value — nil, status, string, integer, error or
// a (nested) array. A server's error reply is a reply like any other, not a failure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cluster::redis {

enum class reply_kind { nil, status, string, integer, error, array };

struct reply {
    reply_kind kind = reply_kind::nil;
    std::string text;             // status, string or error
    std::int64_t integer = 0;     // integer
    std::vector<reply> elements;  // array

    [[nodiscard]] bool is_nil() const noexcept { return kind == reply_kind::nil; }
    [[nodiscard]] bool is_error() const noexcept { return kind == reply_kind::error; }
    [[nodiscard]] bool is_array() const noexcept { return kind == reply_kind::array; }
    // Status and string replies both carry text ("OK", a value); an error carries its message.
    [[nodiscard]] bool has_text() const noexcept {
        return kind == reply_kind::status || kind == reply_kind::string || kind == reply_kind::error;
    }
    [[nodiscard]] std::string_view str() const noexcept { return text; }
};

}  // namespace cluster::redis
