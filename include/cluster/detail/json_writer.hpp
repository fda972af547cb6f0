// cluster::detail::json_writer: one JSON object written member by member, nested objects and
// arrays included — the control socket's answers, without Boost.JSON's compiled part.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include <cluster/detail/json_string.hpp>

namespace cluster::detail {

// Writes one JSON object, member by member, nested objects and arrays included. The core
// writes its few answers itself rather than need Boost.JSON's compiled part (see
// json_string.hpp): it stays headers and liburing.
class json_writer {
public:
    json_writer() { out_.push_back('{'); }

    json_writer& string(std::string_view key, std::string_view text) {
        name(key);
        quoted(text);
        return *this;
    }
    json_writer& count(std::string_view key, std::uint64_t n) {
        name(key);
        char buf[24];
        out_.append(buf, std::to_chars(buf, buf + sizeof buf, n).ptr);
        return *this;
    }
    // To the millionth: more would be noise. JSON has no NaN or infinity: they are null.
    json_writer& number(std::string_view key, double x) {
        name(key);
        if (!std::isfinite(x)) {
            out_.append("null");
            return *this;
        }
        char buf[64];
        out_.append(buf, std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed, 6).ptr);
        return *this;
    }
    json_writer& boolean(std::string_view key, bool b) {
        name(key);
        out_.append(b ? "true" : "false");
        return *this;
    }
    // A member that is an object (or an array's next element, with no key), until close().
    json_writer& object(std::string_view key = {}) {
        name(key);
        out_.push_back('{');
        first_ = true;
        return *this;
    }
    json_writer& array(std::string_view key) {
        name(key);
        out_.push_back('[');
        first_ = true;
        return *this;
    }
    json_writer& close_object() {
        out_.push_back('}');
        first_ = false;
        return *this;
    }
    json_writer& close_array() {
        out_.push_back(']');
        first_ = false;
        return *this;
    }

    // The object, closed, and a newline: one answer.
    [[nodiscard]] std::string line() {
        out_.append("}\n");
        return std::move(out_);
    }

private:
    void name(std::string_view key) {
        if (!std::exchange(first_, false)) out_.push_back(',');
        if (key.empty()) return;
        quoted(key);
        out_.push_back(':');
    }

    void quoted(std::string_view text) { append_json_string(out_, text); }

    std::string out_;
    bool first_ = true;
};

}  // namespace cluster::detail
