// cluster::detail::find_key's and scan_request's definitions: the request line, then the
// headers one at a time.
// Inline in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/detail/request_head.hpp>

#include <cstddef>
#include <string_view>

namespace cluster::detail {

namespace request_head_parts {

// A method longer than this is not one a server knows.
inline constexpr std::size_t max_method = 32;

inline bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

inline bool is_token(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

// Visible ASCII, or the bytes of UTF-8 some clients send unescaped.
inline bool is_target_char(char c) noexcept { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; }

inline bool same_letters(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

inline std::string_view trimmed(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// The next line of `rest` without its CRLF (or bare LF), taken off `rest`; false if `rest`
// holds no whole line yet.
inline bool next_line(std::string_view& rest, std::string_view& line) noexcept {
    const auto lf = rest.find('\n');
    if (lf == std::string_view::npos) return false;
    line = rest.substr(0, lf);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    rest.remove_prefix(lf + 1);
    return true;
}

// A start of a request line that cannot become one: a method of other bytes, or too long.
inline bool cannot_start_request(std::string_view partial) noexcept {
    const auto sp = partial.find(' ');
    const std::string_view method = partial.substr(0, sp);
    for (char c : method)
        if (!is_tchar(c)) return true;
    if (method.size() > max_method) return true;
    if (sp == std::string_view::npos) return false;
    for (char c : partial.substr(sp + 1, partial.find(' ', sp + 1) - sp - 1))
        if (!is_target_char(c)) return true;
    return false;
}

// The target of `line`, "METHOD SP target SP HTTP/1.x"; empty if it is no request line.
inline std::string_view target_of(std::string_view line) noexcept {
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || !is_token(line.substr(0, sp1)) || sp1 > max_method) return {};
    if (!line.substr(sp2 + 1).starts_with("HTTP/1.")) return {};
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    for (char c : target)
        if (!is_target_char(c)) return {};
    return target;
}

// In `list`, split at `separator`, the value of the first "name=value" with a non-empty value.
inline key_in_head value_in(std::string_view list, char separator, std::string_view name) noexcept {
    while (!list.empty()) {
        const auto end = list.find(separator);
        const std::string_view item = trimmed(list.substr(0, end));
        list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
        const auto eq = item.find('=');
        if (eq == std::string_view::npos || item.substr(0, eq) != name) continue;
        std::string_view value = item.substr(eq + 1);
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
        if (!value.empty()) return {head_scan::found, value};
    }
    return {head_scan::absent, {}};
}

inline key_in_head in_query(std::string_view target, std::string_view name) noexcept {
    const auto q = target.find('?');
    if (q == std::string_view::npos) return {head_scan::absent, {}};
    return value_in(target.substr(q + 1, target.find('#', q) - q - 1), '&', name);
}

// A header line's key, if it is the one asked for; not_http if it is no header line.
inline key_in_head in_header_line(std::string_view line, const net::sticky_key& key) noexcept {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return {head_scan::not_http, {}};
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trimmed(line.substr(colon + 1));
    if (key.from == net::sticky_key::source::cookie)
        return same_letters(name, "cookie") ? value_in(value, ';', key.name()) : key_in_head{head_scan::absent, {}};
    if (!same_letters(name, key.name())) return {head_scan::absent, {}};
    const std::string_view first = trimmed(value.substr(0, value.find(',')));
    return first.empty() ? key_in_head{head_scan::absent, {}} : key_in_head{head_scan::found, first};
}

}  // namespace request_head_parts

CLUSTER_DECL key_in_head find_key(std::string_view head, const net::sticky_key& key) noexcept {
    using namespace request_head_parts;
    std::string_view rest = head;
    std::string_view line;
    if (!next_line(rest, line)) return {cannot_start_request(head) ? head_scan::not_http : head_scan::incomplete, {}};
    const std::string_view target = target_of(line);
    if (target.empty()) return {head_scan::not_http, {}};
    if (key.from == net::sticky_key::source::query) return in_query(target, key.name());
    if (key.from == net::sticky_key::source::address) return {head_scan::absent, {}};
    while (next_line(rest, line)) {
        if (line.empty()) return {head_scan::absent, {}};
        const auto found = in_header_line(line, key);
        if (found.state != head_scan::absent) return found;
    }
    return {head_scan::incomplete, {}};
}

CLUSTER_DECL request_line scan_request(std::string_view head) noexcept {
    using namespace request_head_parts;
    std::string_view rest = head;
    std::string_view line;
    if (!next_line(rest, line))
        return {cannot_start_request(head) ? head_scan::not_http : head_scan::incomplete, {}, {}};
    const std::string_view target = target_of(line);
    if (target.empty()) return {head_scan::not_http, {}, {}};
    const std::string_view method = line.substr(0, line.find(' '));
    while (next_line(rest, line)) {
        if (line.empty()) return {head_scan::found, method, target};
        const auto colon = line.find(':');
        if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return {head_scan::not_http, {}, {}};
    }
    return {head_scan::incomplete, {}, {}};
}

}  // namespace cluster::detail
