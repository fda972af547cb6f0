// cluster::net::endpoint's definitions: parsing, resolving and printing addresses. Inline in a
// header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/net/endpoint.hpp>

#include <unistd.h>

#include <climits>
#include <vector>

namespace cluster::net {

namespace detail {

// `relative` made absolute under `base` (itself absolute), with "." and ".." taken out as
// words, not by asking the file system: what Node's path.resolve() gives.
inline std::string resolve_path(std::string_view base, std::string_view relative) {
    std::vector<std::string_view> parts;
    const auto take = [&parts](std::string_view path) {
        while (!path.empty()) {
            const auto slash = path.find('/');
            const auto part = path.substr(0, slash);
            path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
            if (part == "..") {
                if (!parts.empty()) parts.pop_back();
            } else if (!part.empty() && part != ".") {
                parts.push_back(part);
            }
        }
    };
    take(base);
    take(relative);
    std::string out;
    for (const auto part : parts) (out += '/') += part;
    return out.empty() ? "/" : out;
}

}  // namespace detail

CLUSTER_DECL endpoint endpoint::tcp(std::string_view address, std::uint16_t port) {
    return or_throw(make_ip(address, port), address);
}

CLUSTER_DECL result<endpoint> endpoint::parse(std::string_view text) {
    if (text.empty()) return endpoint_errc::empty;
    if (text.starts_with("udp:")) return endpoint_errc::udp_text;
    if (text.starts_with("unix:")) return make_unix(text.substr(5));
    if (text.starts_with("fd:")) return make_inherited(text.substr(3));
    if (text.front() == '/' || text.front() == '@') return make_unix(text);
    std::string_view host;
    std::string_view port;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return endpoint_errc::invalid_address;
        host = text.substr(0, close + 1);
        const auto rest = text.substr(close + 1);
        if (rest.empty()) return endpoint_errc::missing_port;
        if (rest.front() != ':') return endpoint_errc::invalid_address;
        port = rest.substr(1);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return endpoint_errc::missing_port;
        host = text.substr(0, colon);
        if (host.find(':') != std::string_view::npos) return endpoint_errc::unbracketed_ipv6;
        port = text.substr(colon + 1);
    }
    const auto number = detail::parse_port(port);
    if (!number) return number.error();
    return make_ip(host, *number);
}

CLUSTER_DECL result<endpoint> endpoint::from_sockaddr(const sockaddr* addr, socklen_t len) noexcept {
    const auto invalid = std::make_error_code(std::errc::invalid_argument);
    if (addr == nullptr || len < sizeof(sa_family_t) || len > sizeof(sockaddr_storage)) return invalid;
    endpoint ep;
    switch (addr->sa_family) {
    case AF_INET: {
        if (len < sizeof(sockaddr_in)) return invalid;
        sockaddr_in in{};
        std::memcpy(&in, addr, sizeof in);
        ep.assign_ipv4(in.sin_addr, ntohs(in.sin_port));
        return ep;
    }
    case AF_INET6: {
        if (len < sizeof(sockaddr_in6)) return invalid;
        sockaddr_in6 in6{};
        std::memcpy(&in6, addr, sizeof in6);
        ep.assign_ipv6(in6.sin6_addr, ntohs(in6.sin6_port), in6.sin6_scope_id);
        return ep;
    }
    case AF_UNIX: {
        sockaddr_un un{};
        const std::size_t used = std::min<std::size_t>(len, sizeof un);
        std::memcpy(&un, addr, used);
        const std::size_t name_len = used - detail::unix_name_offset;
        if (name_len > 0 && un.sun_path[0] == '\0')
            ep.assign_unix(std::string_view(un.sun_path + 1, name_len - 1), true);
        else
            ep.assign_unix(std::string_view(un.sun_path, ::strnlen(un.sun_path, name_len)), false);
        return ep;
    }
    default: return std::make_error_code(std::errc::address_family_not_supported);
    }
}

CLUSTER_DECL bool endpoint::is_abstract() const noexcept {
    return is_unix() && size_ > detail::unix_name_offset && unix_name()[0] == '\0';
}

CLUSTER_DECL std::uint16_t endpoint::port() const noexcept {
    if (family() == AF_INET) return ntohs(as<sockaddr_in>().sin_port);
    if (family() == AF_INET6) return ntohs(as<sockaddr_in6>().sin6_port);
    return 0;
}

CLUSTER_DECL std::string endpoint::address() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET) {
        const auto in = as<sockaddr_in>();
        return ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
    }
    if (family() == AF_INET6) {
        const auto in6 = as<sockaddr_in6>();
        std::string out = ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        // The interface index, not its name: printing must not make a system call.
        if (in6.sin6_scope_id != 0) out += '%' + std::to_string(in6.sin6_scope_id);
        return out;
    }
    if (is_abstract()) return '@' + std::string(unix_name() + 1, size_ - detail::unix_name_offset - 1);
    if (is_unix() && !is_unnamed()) return std::string(unix_name());
    return {};
}

CLUSTER_DECL result<endpoint> endpoint::absolute() const {
    if (!is_unix() || is_abstract() || is_unnamed() || unix_name()[0] == '/') return *this;
    char cwd[PATH_MAX];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return errno_code(errno);
    return make_unix(detail::resolve_path(cwd, unix_name()));
}

CLUSTER_DECL std::string endpoint::to_string() const {
    if (is_inherited()) return "fd:" + name_;
    if (family() == AF_INET) return address() + ':' + std::to_string(port());
    if (family() == AF_INET6) return '[' + address() + "]:" + std::to_string(port());
    if (is_unix()) return "unix:" + address();
    return "(none)";
}

CLUSTER_DECL endpoint endpoint::or_throw(result<endpoint> r, std::string_view text) {
    if (!r) throw std::system_error(r.error(), "cluster: \"" + std::string(text) + "\" is not an endpoint");
    return *r;
}

CLUSTER_DECL result<endpoint> endpoint::make_ip(std::string_view address, std::uint16_t port) {
    if (address.size() >= 2 && address.front() == '[' && address.back() == ']')
        address = address.substr(1, address.size() - 2);
    if (address.empty()) return endpoint_errc::missing_address;
    const std::string text(address);  // inet_pton wants a NUL-terminated string
    endpoint ep;
    in_addr v4{};
    if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
        ep.assign_ipv4(v4, port);
        return ep;
    }
    const auto percent = text.find('%');
    in6_addr v6{};
    if (::inet_pton(AF_INET6, text.substr(0, percent).c_str(), &v6) != 1) return endpoint_errc::invalid_address;
    std::uint32_t scope = 0;
    if (percent != std::string::npos) {
        const auto parsed = detail::parse_scope(text.substr(percent + 1));
        if (!parsed) return parsed.error();
        scope = *parsed;
    }
    ep.assign_ipv6(v6, port, scope);
    return ep;
}

CLUSTER_DECL result<endpoint> endpoint::make_unix(std::string_view path) {
    const bool abstract = path.starts_with('@');
    const auto name = abstract ? path.substr(1) : path;
    // An abstract name is bytes and may hold NULs; a path is a C string.
    const bool has_nul = name.find('\0') != std::string_view::npos;
    if (name.empty() || (!abstract && has_nul)) return endpoint_errc::invalid_path;
    if (name.size() > detail::max_unix_name) return endpoint_errc::path_too_long;
    endpoint ep;
    ep.assign_unix(name, abstract);
    return ep;
}

CLUSTER_DECL result<endpoint> endpoint::make_inherited(std::string_view name) {
    const bool printable =
        std::all_of(name.begin(), name.end(), [](char c) { return c != ':' && static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
    if (name.empty() || name.size() > detail::max_inherited_name || !printable) return endpoint_errc::invalid_name;
    endpoint ep;
    ep.name_ = name;
    return ep;
}

CLUSTER_DECL void endpoint::assign_ipv4(in_addr addr, std::uint16_t port) noexcept {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    in.sin_addr = addr;
    assign(in);
}

CLUSTER_DECL void endpoint::assign_ipv6(const in6_addr& addr, std::uint16_t port, std::uint32_t scope) noexcept {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    in6.sin6_addr = addr;
    in6.sin6_scope_id = scope;
    assign(in6);
}

CLUSTER_DECL void endpoint::assign_unix(std::string_view name, bool abstract) noexcept {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path + (abstract ? 1 : 0), name.data(), name.size());
    const std::size_t used = name.empty() ? 0 : name.size() + 1;
    storage_ = {};
    std::memcpy(&storage_, &un, sizeof un);
    size_ = static_cast<socklen_t>(detail::unix_name_offset + used);
}

CLUSTER_DECL const char* endpoint::unix_name() const noexcept {
    return reinterpret_cast<const char*>(&storage_) + detail::unix_name_offset;
}

CLUSTER_DECL std::span<const std::byte> endpoint::host_bytes() const noexcept {
    const auto* base = reinterpret_cast<const std::byte*>(&storage_);
    if (family() == AF_INET) return {base + offsetof(sockaddr_in, sin_addr), sizeof(in_addr)};
    if (family() == AF_INET6) {
        const auto* addr = base + offsetof(sockaddr_in6, sin6_addr);
        constexpr unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};  // ::ffff:0:0/96
        if (std::memcmp(addr, v4_mapped, sizeof v4_mapped) == 0) return {addr + sizeof v4_mapped, sizeof(in_addr)};
        return {addr, sizeof(in6_addr)};
    }
    if (is_unix()) return {base + detail::unix_name_offset, size_ - detail::unix_name_offset};
    return {};
}

}  // namespace cluster::net
