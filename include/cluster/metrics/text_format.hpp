// cluster::metrics text format: Prometheus's text exposition format, version 0.0.4 — which
// names are valid, how help and label values are escaped, and a writer of families and samples.
#pragma once

#include <cluster/detail/utf8.hpp>

#include <boost/describe/enum.hpp>

#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace cluster::metrics {

// The Content-Type a scrape is answered with.
inline constexpr std::string_view text_content_type = "text/plain; version=0.0.4; charset=utf-8";

enum class metric_type { counter, gauge, histogram, untyped };
// Described: a worker's metrics snapshot carries each family's type to its primary.
BOOST_DESCRIBE_ENUM(metric_type, counter, gauge, histogram, untyped)

inline const char* to_string(metric_type t) noexcept {
    switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
    case metric_type::untyped: return "untyped";
    }
    return "untyped";
}

namespace detail {
constexpr bool name_start(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
constexpr bool name_char(char c) noexcept { return name_start(c) || (c >= '0' && c <= '9'); }
}  // namespace detail

// [a-zA-Z_:][a-zA-Z0-9_:]*
constexpr bool valid_metric_name(std::string_view name) noexcept {
    if (name.empty() || !(detail::name_start(name[0]) || name[0] == ':')) return false;
    for (const char c : name)
        if (!(detail::name_char(c) || c == ':')) return false;
    return true;
}

// [a-zA-Z_][a-zA-Z0-9_]*, and not beginning with "__", which Prometheus keeps for itself.
constexpr bool valid_label_name(std::string_view name) noexcept {
    if (name.empty() || !detail::name_start(name[0]) || name.starts_with("__")) return false;
    for (const char c : name)
        if (!detail::name_char(c)) return false;
    return true;
}

struct label {
    std::string_view name;
    std::string_view value;
};

// A label value as the format quotes it: backslash, double quote and newline escaped, and
// bytes that are not UTF-8 replaced (U+FFFD), since a scraper rejects the whole page for one.
inline void append_label_value(std::string& out, std::string_view value) {
    std::string valid;
    cluster::detail::append_utf8_replacing(valid, value);
    for (const char c : valid) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

// A HELP text: backslash and newline escaped, bytes that are not UTF-8 replaced.
inline void append_help(std::string& out, std::string_view help) {
    std::string valid;
    cluster::detail::append_utf8_replacing(valid, help);
    for (const char c : valid) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
}

// A sample value: integers exactly, other numbers in the shortest form that reads back the
// same, and the format's own spellings of infinities and NaN.
inline void append_value(std::string& out, double v) {
    if (std::isnan(v)) {
        out += "NaN";
        return;
    }
    if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
        return;
    }
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

inline void append_value(std::string& out, std::uint64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// What a sample's value may be: a count, exactly, or any number.
template <class T>
concept sample_value = std::same_as<T, std::uint64_t> || std::same_as<T, double>;

// Appends families to `out`: each family's HELP and TYPE, then its samples. Names and label
// names are the caller's to check (valid_metric_name, valid_label_name) when they are defined:
// the writer takes them as they are, on the scrape's path.
class text_writer {
public:
    explicit text_writer(std::string& out) noexcept : out_(out) {}

    void family(std::string_view name, metric_type type, std::string_view help) {
        out_.append("# HELP ").append(name).push_back(' ');
        append_help(out_, help);
        out_.append("\n# TYPE ").append(name).push_back(' ');
        out_.append(to_string(type)).push_back('\n');
    }

    template <sample_value Value>
    void sample(std::string_view name, std::span<const label> labels, Value value) {
        out_.append(name);
        if (!labels.empty()) {
            out_.push_back('{');
            bool first = true;
            for (const auto& l : labels) {
                if (!first) out_.push_back(',');
                first = false;
                out_.append(l.name).append("=\"");
                append_label_value(out_, l.value);
                out_.push_back('"');
            }
            out_.push_back('}');
        }
        out_.push_back(' ');
        append_value(out_, value);
        out_.push_back('\n');
    }

    template <sample_value Value>
    void sample(std::string_view name, std::initializer_list<label> labels, Value value) {
        sample(name, std::span<const label>(labels.begin(), labels.size()), value);
    }

private:
    std::string& out_;
};

}  // namespace cluster::metrics
