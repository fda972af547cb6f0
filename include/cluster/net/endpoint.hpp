// cluster::net::endpoint: an address to listen on or connect to — IPv4, IPv6, a Unix-domain socket
// (a path, or Linux's abstract namespace), or an inherited socket's name — parsed, printed, hashed.
#pragma once

#include <cluster/config.hpp>

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
    udp_text,           // "udp:127.0.0.1:53": a udp_endpoint's text, not a stream endpoint's
    invalid_name,       // "fd:", an inherited socket's name with ':' or a control character in it
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
        case endpoint_errc::udp_text:
            return "a UDP endpoint: udp_endpoint::parse reads it, and listen() on it gives a udp_socket";
        case endpoint_errc::invalid_name:
            return "an inherited socket's name is 1 to 255 bytes, with no ':' and no control character";
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

// systemd's limit on a passed descriptor's name (FileDescriptorName=), which inherited names follow.
inline constexpr std::size_t max_inherited_name = 255;

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

class udp_endpoint;

class endpoint {
public:
    // No address (family AF_UNSPEC).
    endpoint() noexcept = default;

    // parse(text), throwing std::system_error that quotes the text if it is no endpoint.
    explicit endpoint(std::string_view text) : endpoint(or_throw(parse(text), text)) {}

    // A numeric IPv4 or IPv6 address ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0") and a
    // port; throws std::system_error quoting the address if it is not one.
    static CLUSTER_DECL endpoint tcp(std::string_view address, std::uint16_t port);

    // The same address and port, for UDP (see udp_endpoint.hpp).
    static CLUSTER_DECL udp_endpoint udp(std::string_view address, std::uint16_t port);

    // A Unix-domain socket at `path`, or in the abstract namespace when it starts with '@'
    // ("@name"); throws std::system_error quoting the path if it cannot be one.
    static endpoint unix_socket(std::string_view path) { return or_throw(make_unix(path), path); }

    // A listening socket the primary adopted under `name` (primary<P>::adopt): a worker that
    // listens here gets that socket. Names follow systemd's: 1 to 255 bytes, no ':', no control
    // character. "fd:3" names what adopting the primary's fd 3 registers, as Node's
    // listen({fd: 3}). Throws std::system_error quoting the name if it cannot be one.
    static endpoint inherited(std::string_view name) { return or_throw(make_inherited(name), name); }

    // "0.0.0.0:8000", "[::]:8000", "[fe80::1%2]:80", "unix:/run/app.sock", "unix:@name", a
    // bare "/path" or "@name", or "fd:name". Addresses are numeric: nothing is resolved.
    static CLUSTER_DECL result<endpoint> parse(std::string_view text);

    // An address the kernel gave (accept, getsockname, getpeername). A Unix socket without
    // a name (a client's, or one end of a socketpair) is an endpoint too: is_unnamed().
    static CLUSTER_DECL result<endpoint> from_sockaddr(const sockaddr* addr, socklen_t len) noexcept;

    // AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC for no address (an inherited socket's name included).
    [[nodiscard]] int family() const noexcept { return storage_.ss_family; }
    [[nodiscard]] bool empty() const noexcept { return family() == AF_UNSPEC && name_.empty(); }
    [[nodiscard]] bool is_ip() const noexcept { return family() == AF_INET || family() == AF_INET6; }
    [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }
    [[nodiscard]] CLUSTER_DECL bool is_abstract() const noexcept;
    [[nodiscard]] bool is_unnamed() const noexcept { return is_unix() && size_ <= detail::unix_name_offset; }
    [[nodiscard]] bool is_inherited() const noexcept { return !name_.empty(); }
    // An inherited socket's name ("3" in "fd:3"); "" for any other endpoint.
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    // This endpoint with a relative Unix path made absolute against the working directory, as
    // Node's path.resolve() would ("." and ".." taken out); any other endpoint as it is. A
    // worker resolves its path before the primary, which may work elsewhere, binds it.
    // path_too_long if the whole path no longer fits.
    [[nodiscard]] CLUSTER_DECL result<endpoint> absolute() const;

    // The port; 0 for a Unix-domain socket (and for "let the kernel choose").
    [[nodiscard]] CLUSTER_DECL std::uint16_t port() const noexcept;

    // The address without the port: "127.0.0.1", "::1", "fe80::1%2", "/run/app.sock", "@name";
    // "" for an unnamed Unix socket or no address.
    [[nodiscard]] CLUSTER_DECL std::string address() const;

    // The form parse() reads back: "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock",
    // "unix:@name", "fd:name". An unnamed Unix socket prints as "unix:" and no address as "(none)":
    // neither parses, since neither can be listened on or connected to.
    [[nodiscard]] CLUSTER_DECL std::string to_string() const;

    // A hash of the host, without the port, that every process computes alike: for sticky
    // scheduling. An IPv4 client seen by a dual-stack socket (::ffff:a.b.c.d) hashes as
    // a.b.c.d. Unix-domain peers are mostly unnamed, and then all hash alike.
    [[nodiscard]] std::uint64_t address_hash() const noexcept { return detail::stable_hash(host_bytes()); }

    // For bind, connect and friends.
    [[nodiscard]] const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
    [[nodiscard]] socklen_t size() const noexcept { return size_; }

    // Same family, address, port (and IPv6 scope), same Unix name, or same inherited name.
    friend bool operator==(const endpoint& a, const endpoint& b) noexcept {
        return a.size_ == b.size_ && std::memcmp(&a.storage_, &b.storage_, a.size_) == 0 && a.name_ == b.name_;
    }

private:
    static CLUSTER_DECL endpoint or_throw(result<endpoint> r, std::string_view text);

    static CLUSTER_DECL result<endpoint> make_ip(std::string_view address, std::uint16_t port);

    static CLUSTER_DECL result<endpoint> make_unix(std::string_view path);

    static CLUSTER_DECL result<endpoint> make_inherited(std::string_view name);

    CLUSTER_DECL void assign_ipv4(in_addr addr, std::uint16_t port) noexcept;
    // Flow information is dropped: it labels packets, it does not name a host.
    CLUSTER_DECL void assign_ipv6(const in6_addr& addr, std::uint16_t port, std::uint32_t scope) noexcept;
    // The length counts one NUL beside the name: a path's terminator, as getsockname
    // reports it, or an abstract name's leading NUL (its other bytes are all significant).
    CLUSTER_DECL void assign_unix(std::string_view name, bool abstract) noexcept;
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
    [[nodiscard]] CLUSTER_DECL const char* unix_name() const noexcept;

    [[nodiscard]] CLUSTER_DECL std::span<const std::byte> host_bytes() const noexcept;

    sockaddr_storage storage_{};
    socklen_t size_ = 0;
    std::string name_;  // an inherited socket's: it has no address until the primary resolves it
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

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/net/impl/endpoint.ipp>
#endif

// endpoint::udp() gives one: whoever can call it has the type.
#include <cluster/net/udp_endpoint.hpp>
