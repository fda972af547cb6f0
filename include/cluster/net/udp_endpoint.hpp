// cluster::net::udp_endpoint: an IPv4 or IPv6 address and port to send and receive datagrams
// on, written "udp:127.0.0.1:5353" — a type of its own, so that listen() on it gives a udp_socket.
#pragma once

#include <cluster/config.hpp>

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <cluster/net/endpoint.hpp>
#include <cluster/result.hpp>

namespace cluster::net {

class udp_endpoint {
public:
    // What starts the text form: it tells a UDP endpoint's text from a stream endpoint's.
    static constexpr std::string_view prefix = "udp:";

    // No address (family AF_UNSPEC).
    udp_endpoint() noexcept = default;

    // parse(text), throwing std::system_error that quotes the text if it is no UDP endpoint.
    explicit CLUSTER_DECL udp_endpoint(std::string_view text);

    // `ip`'s address and port; throws std::system_error unless it is an IPv4 or IPv6 endpoint.
    explicit CLUSTER_DECL udp_endpoint(const endpoint& ip);

    // "udp:127.0.0.1:5353", "udp:[::1]:0", "udp:[fe80::1%2]:53"; the prefix may be left out.
    // Addresses are numeric: nothing is resolved.
    static CLUSTER_DECL result<udp_endpoint> parse(std::string_view text);

    // An address the kernel gave (recvmsg, getsockname): EAFNOSUPPORT unless IPv4 or IPv6.
    static CLUSTER_DECL result<udp_endpoint> from_sockaddr(const sockaddr* addr, socklen_t len) noexcept;

    // Whether `text` is a UDP endpoint's text form, prefix and all.
    [[nodiscard]] static bool names_udp(std::string_view text) noexcept { return text.starts_with(prefix); }

    // The address and port, as an endpoint (for bind, sendmsg and the like).
    [[nodiscard]] const endpoint& ip() const noexcept { return ip_; }
    // AF_INET, AF_INET6, or AF_UNSPEC for no address.
    [[nodiscard]] int family() const noexcept { return ip_.family(); }
    [[nodiscard]] bool empty() const noexcept { return ip_.empty(); }
    [[nodiscard]] std::uint16_t port() const noexcept { return ip_.port(); }
    // "127.0.0.1", "::1": the address without the port.
    [[nodiscard]] std::string address() const { return ip_.address(); }
    // The form parse() reads back: "udp:127.0.0.1:5353", "udp:[::1]:5353".
    [[nodiscard]] std::string to_string() const { return std::string(prefix) + ip_.to_string(); }

    friend bool operator==(const udp_endpoint& a, const udp_endpoint& b) noexcept { return a.ip_ == b.ip_; }

private:
    static CLUSTER_DECL result<udp_endpoint> from_ip(const endpoint& ip) noexcept;

    endpoint ip_;
};

}  // namespace cluster::net

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/net/impl/udp_endpoint.ipp>
#endif
