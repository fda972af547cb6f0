// cluster::net::endpoint: an address to listen on or connect to — IPv4, IPv6, or a Unix-domain
// socket (a path, or Linux's abstract namespace) — parsed, printed, hashed, and as a sockaddr.
#pragma once

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include <cluster/error.hpp>
#include <cluster/result.hpp>

namespace cluster::net {

// Why a text or an address is not an endpoint.
enum class endpoint_errc {
    empty = 1,          // ""
    missing_port,       // "127.0.0.1", "[::1]"
    invalid_port,       // "127.0.0.1:http", "127.0.0.1:70000"
    missing_address,    // ":8080"
    invalid_address,    // "localhost:80": only numeric addresses, nothing is resolved
    unbracketed_ipv6,   // "::1:8080"
    unknown_interface,  // "[fe80::1%nosuch]:80"
    invalid_path,       // "unix:", "@", a path with a NUL byte in it
    path_too_long,      // more than sun_path holds
};

class endpoint_error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "cluster.endpoint"; }
    std::string message(int ev) const override {
        switch (static_cast<endpoint_errc>(ev)) {
        case endpoint_errc::empty: return "empty endpoint";
        case endpoint_errc::missing_port: return "missing port (write ADDRESS:PORT; port 0 lets the kernel choose)";
        case endpoint_errc::invalid_port: return "the port is not a number from 0 to 65535";
        case endpoint_errc::missing_address: return "missing address (write 0.0.0.0:PORT, [::]:PORT or 127.0.0.1:PORT)";
        case endpoint_errc::invalid_address: return "not a numeric IPv4 or IPv6 address (host names are not resolved)";
        case endpoint_errc::unbracketed_ipv6: return "an IPv6 address with a port needs brackets, as in [::1]:8080";
        case endpoint_errc::unknown_interface: return "unknown network interface after '%' in an IPv6 address";
        case endpoint_errc::invalid_path: return "empty Unix socket path, or one with a NUL byte in it";
        case endpoint_errc::path_too_long: return "Unix socket path longer than 107 bytes";
        }
        return "unknown endpoint error";
    }
};

inline const std::error_category& endpoint_category() noexcept {
    static const endpoint_error_category category;
    return category;
}

inline std::error_code make_error_code(endpoint_errc e) noexcept { return {static_cast<int>(e), endpoint_category()}; }

}  // namespace cluster::net

template <>
struct std::is_error_code_enum<cluster::net::endpoint_errc> : std::true_type {};

namespace cluster::net {

namespace detail {

// sun_path keeps one byte for the terminating NUL of a path, or the leading NUL of an
// abstract name.
inline constexpr std::size_t max_unix_name = sizeof(sockaddr_un::sun_path) - 1;
inline constexpr socklen_t unix_name_offset = offsetof(sockaddr_un, sun_path);

inline result<std::uint16_t> parse_port(std::string_view text) noexcept {
    if (text.empty()) return endpoint_errc::missing_port;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || value > 65535) return endpoint_errc::invalid_port;
    return static_cast<std::uint16_t>(value);
}

// An IPv6 zone: an interface index, or a name that if_nametoindex knows.
inline result<std::uint32_t> parse_scope(const std::string& text) noexcept {
    std::uint32_t index = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), index);
    if (!text.empty() && ec == std::errc{} && end == text.data() + text.size()) return index;
    index = text.empty() ? 0 : ::if_nametoindex(text.c_str());
    if (index == 0) return endpoint_errc::unknown_interface;
    return index;
}

// MurmurHash3's finaliser: every bit of the result depends on every bit of h.
inline constexpr std::uint64_t fmix64(std::uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

// FNV-1a, then fmix64: FNV-1a's low bits depend only on the low bits of each byte, and a
// sticky schedule takes the hash modulo the worker count.
inline std::uint64_t stable_hash(std::span<const std::byte> bytes) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (std::byte b : bytes) {
        h ^= static_cast<std::uint64_t>(b);
        h *= 0x100000001b3ull;
    }
    return fmix64(h);
}

}  // namespace detail

class endpoint {
public:
    // No address (family AF_UNSPEC).
    endpoint() noexcept = default;

    // parse(text), throwing std::system_error that quotes the text if it is no endpoint.
    explicit endpoint(std::string_view text) : endpoint(or_throw(parse(text), text)) {}

    // A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0") and a
    // port; throws std::system_error quoting the address if it is not one.
    static endpoint tcp(std::string_view address, std::uint16_t port) {
        return or_throw(make_ip(address, port), address);
    }

    // A Unix-domain socket at `path`, or in the abstract namespace when it starts with '@'
    // ("@name"); throws std::system_error quoting the path if it cannot be one.
    static endpoint unix_socket(std::string_view path) { return or_throw(make_unix(path), path); }

    // "0.0.0.0:8000", "[::]:8000", "[fe80::1%2]:80", "unix:/run/app.sock", "unix:@name", or
    // a bare "/path" or "@name". Addresses are numeric: nothing is resolved.
    static result<endpoint> parse(std::string_view text) {
        if (text.empty()) return endpoint_errc::empty;
        if (text.starts_with("unix:")) return make_unix(text.substr(5));
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

    // An address the kernel gave (accept, getsockname, getpeername). A Unix socket without
    // a name (a client's, or one end of a socketpair) is an endpoint too: is_unnamed().
    static result<endpoint> from_sockaddr(const sockaddr* addr, socklen_t len) noexcept {
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

    // AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC for no address.
    [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
    [[nodiscard]] bool empty() const noexcept { return family() == AF_UNSPEC; }
    [[nodiscard]] bool is_ip() const noexcept { return family() == AF_INET || family() == AF_INET6; }
    [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }
    [[nodiscard]] bool is_abstract() const noexcept {
        return is_unix() && size_ > detail::unix_name_offset && unix_name()[0] == '\0';
    }
    [[nodiscard]] bool is_unnamed() const noexcept { return is_unix() && size_ <= detail::unix_name_offset; }

    // The port; 0 for a Unix-domain socket (and for "let the kernel choose").
    [[nodiscard]] std::uint16_t port() const noexcept {
        if (family() == AF_INET) return ntohs(as<sockaddr_in>().sin_port);
        if (family() == AF_INET6) return ntohs(as<sockaddr_in6>().sin6_port);
        return 0;
    }

    // The address without the port: "127.0.0.1", "::1", "fe80::1%2", "/run/app.sock", "@name";
    // "" for an unnamed Unix socket or no address.
    [[nodiscard]] std::string address() const {
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

    // The form parse() reads back: "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock",
    // "unix:@name". An unnamed Unix socket prints as "unix:" and no address as "(none)":
    // neither parses, since neither can be listened on or connected to.
    [[nodiscard]] std::string to_string() const {
        if (family() == AF_INET) return address() + ':' + std::to_string(port());
        if (family() == AF_INET6) return '[' + address() + "]:" + std::to_string(port());
        if (is_unix()) return "unix:" + address();
        return "(none)";
    }

    // A hash of the host, without the port, that every process computes alike: for sticky
    // scheduling. An IPv4 client seen by a dual-stack socket (::ffff:a.b.c.d) hashes as
    // a.b.c.d. Unix-domain peers are mostly unnamed, and then all hash alike.
    [[nodiscard]] std::uint64_t address_hash() const noexcept { return detail::stable_hash(host_bytes()); }

    // For bind, connect and friends.
    [[nodiscard]] const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    [[nodiscard]] socklen_t size() const noexcept { return size_; }

    // Same family, address, port (and IPv6 scope), or same Unix name.
    friend bool operator==(const endpoint& a, const endpoint& b) noexcept {
        return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0;
    }

private:
    static endpoint or_throw(result<endpoint> r, std::string_view text) {
        if (!r) throw std::system_error(r.error(), "cluster: \"" + std::string(text) + "\" is not an endpoint");
        return *r;
    }

    static result<endpoint> make_ip(std::string_view address, std::uint16_t port) {
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

    static result<endpoint> make_unix(std::string_view path) {
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

    void assign_ipv4(in_addr addr, std::uint16_t port) noexcept {
        sockaddr_in in{};
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        in.sin_addr = addr;
        assign(in);
    }
    // Flow information is dropped: it labels packets, it does not name a host.
    void assign_ipv6(const in6_addr& addr, std::uint16_t port, std::uint32_t scope) noexcept {
        sockaddr_in6 in6{};
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(port);
        in6.sin6_addr = addr;
        in6.sin6_scope_id = scope;
        assign(in6);
    }
    // The length counts one NUL beside the name: a path's terminator, as getsockname
    // reports it, or an abstract name's leading NUL (its other bytes are all significant).
    void assign_unix(std::string_view name, bool abstract) noexcept {
        sockaddr_un un{};
        un.sun_family = AF_UNIX;
        std::memcpy(un.sun_path + (abstract ? 1 : 0), name.data(), name.size());
        const std::size_t used = name.empty() ? 0 : name.size() + 1;
        storage_ = {};
        std::memcpy(&storage_, &un, sizeof un);
        size_ = static_cast<socklen_t>(detail::unix_name_offset + used);
    }
    template <class Sockaddr>
    void assign(const Sockaddr& addr) noexcept {
        storage_ = {};
        std::memcpy(&storage_, &addr, sizeof addr);
        size_ = sizeof addr;
    }

    template <class Sockaddr>
    [[nodiscard]] Sockaddr as() const noexcept {
        Sockaddr out;
        std::memcpy(&out, &storage_, sizeof out);
        return out;
    }
    [[nodiscard]] const char* unix_name() const noexcept {
        return reinterpret_cast<const char*>(&storage_) + detail::unix_name_offset;
    }

    [[nodiscard]] std::span<const std::byte> host_bytes() const noexcept {
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

    sockaddr_storage storage_{};
    socklen_t size_ = 0;
};

// The address a socket is bound to: with port 0, the port the kernel chose.
inline result<endpoint> local_endpoint(int fd) noexcept {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return errno_code(errno);
    return endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&addr), len);
}

// The address of a connected socket's peer; ENOTCONN once the connection is gone.
inline result<endpoint> peer_endpoint(int fd) noexcept {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return errno_code(errno);
    return endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&addr), len);
}

}  // namespace cluster::net
