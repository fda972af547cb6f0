// cluster::net::udp_endpoint's definitions, and endpoint::udp(). Inline in a header-only build;
// compiled once into cluster::core otherwise.
#pragma once

#include <cluster/net/udp_endpoint.hpp>

#include <cerrno>
#include <system_error>

namespace cluster::net {

CLUSTER_DECL udp_endpoint endpoint::udp(std::string_view address, std::uint16_t port) {
    return udp_endpoint(tcp(address, port));
}

CLUSTER_DECL udp_endpoint::udp_endpoint(std::string_view text) {
    auto parsed = parse(text);
    if (!parsed) throw std::system_error(parsed.error(), "cluster: \"" + std::string(text) + "\" is not a UDP endpoint");
    ip_ = parsed->ip_;
}

CLUSTER_DECL udp_endpoint::udp_endpoint(const endpoint& ip) {
    auto made = from_ip(ip);
    if (!made) throw std::system_error(made.error(), "cluster: " + ip.to_string() + " is not a UDP endpoint");
    ip_ = made->ip_;
}

CLUSTER_DECL result<udp_endpoint> udp_endpoint::parse(std::string_view text) {
    if (names_udp(text)) text.remove_prefix(prefix.size());
    auto ip = endpoint::parse(text);
    if (!ip) return ip.error();
    return from_ip(*ip);
}

CLUSTER_DECL result<udp_endpoint> udp_endpoint::from_sockaddr(const sockaddr* addr, socklen_t len) noexcept {
    auto ip = endpoint::from_sockaddr(addr, len);
    if (!ip) return ip.error();
    if (!ip->is_ip()) return std::make_error_code(std::errc::address_family_not_supported);
    return from_ip(*ip);
}

CLUSTER_DECL result<udp_endpoint> udp_endpoint::from_ip(const endpoint& ip) noexcept {
    if (!ip.is_ip()) return endpoint_errc::invalid_address;
    udp_endpoint out;
    out.ip_ = ip;
    return out;
}

}  // namespace cluster::net
