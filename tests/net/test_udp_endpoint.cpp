// cluster::udp_endpoint: its text form ("udp:127.0.0.1:5353", "udp:[::1]:0") read and printed
// back, endpoint::udp(), addresses from the kernel, and the clear refusals: a Unix-domain
// address, a stream endpoint's parser given a UDP text, and text that is no endpoint at all.
#include <catch2/catch.hpp>

#include <cluster/net/endpoint.hpp>
#include <cluster/net/udp_endpoint.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <string>
#include <string_view>
#include <system_error>

using namespace cluster;
using namespace cluster::net;

TEST_CASE("udp_endpoint text: IPv4 and IPv6, with or without the prefix, printed back with it") {
    const auto v4 = udp_endpoint::parse("udp:127.0.0.1:5353");
    REQUIRE(v4.has_value());
    CHECK(v4->family() == AF_INET);
    CHECK(v4->address() == "127.0.0.1");
    CHECK(v4->port() == 5353);
    CHECK(v4->to_string() == "udp:127.0.0.1:5353");
    CHECK(v4->ip() == endpoint::tcp("127.0.0.1", 5353));

    const auto v6 = udp_endpoint::parse("udp:[::1]:0");
    REQUIRE(v6.has_value());
    CHECK(v6->family() == AF_INET6);
    CHECK(v6->port() == 0);
    CHECK(v6->to_string() == "udp:[::1]:0");

    const auto bare = udp_endpoint::parse("[::]:53");
    REQUIRE(bare.has_value());
    CHECK(bare->to_string() == "udp:[::]:53");

    for (std::string_view text : {"udp:0.0.0.0:8000", "udp:[fe80::1%1]:53", "udp:[::ffff:10.0.0.1]:1"}) {
        INFO(text);
        const auto parsed = udp_endpoint::parse(text);
        REQUIRE(parsed.has_value());
        CHECK(parsed->to_string() == text);
        CHECK(udp_endpoint(parsed->to_string()) == *parsed);
    }
    CHECK(udp_endpoint::names_udp("udp:127.0.0.1:1"));
    CHECK_FALSE(udp_endpoint::names_udp("127.0.0.1:1"));
}

TEST_CASE("endpoint::udp() takes an address and a port, as endpoint::tcp() does") {
    const udp_endpoint ep = endpoint::udp("::1", 5353);
    CHECK(ep.to_string() == "udp:[::1]:5353");
    CHECK(endpoint::udp("127.0.0.1", 0) == udp_endpoint("udp:127.0.0.1:0"));
    CHECK(udp_endpoint(endpoint::tcp("10.1.2.3", 9)).to_string() == "udp:10.1.2.3:9");
    CHECK_THROWS_AS(endpoint::udp("localhost", 53), std::system_error);
}

TEST_CASE("refused: no address, no port, a Unix-domain address, and a UDP text read as a stream endpoint") {
    CHECK(udp_endpoint::parse("udp:").error() == endpoint_errc::empty);
    CHECK(udp_endpoint::parse("udp:127.0.0.1").error() == endpoint_errc::missing_port);
    CHECK(udp_endpoint::parse("udp:localhost:53").error() == endpoint_errc::invalid_address);
    CHECK(udp_endpoint::parse("udp:/run/app.sock").error() == endpoint_errc::invalid_address);
    CHECK(udp_endpoint::parse("udp:unix:@name").error() == endpoint_errc::invalid_address);
    CHECK(udp_endpoint::parse("udp:udp:127.0.0.1:53").error() == endpoint_errc::udp_text);

    const auto as_stream = endpoint::parse("udp:127.0.0.1:53");
    REQUIRE_FALSE(as_stream.has_value());
    CHECK(as_stream.error() == endpoint_errc::udp_text);
    CHECK(as_stream.error().message().find("udp_endpoint") != std::string::npos);

    try {
        (void)udp_endpoint(endpoint::unix_socket("/run/app.sock"));
        FAIL("a Unix-domain address made a UDP endpoint");
    } catch (const std::system_error& e) {
        CHECK(e.code() == endpoint_errc::invalid_address);
        CHECK(std::string(e.what()).find("unix:/run/app.sock") != std::string::npos);
    }
    try {
        (void)udp_endpoint("udp:127.0.0.1:http");
        FAIL("a named port parsed");
    } catch (const std::system_error& e) {
        CHECK(e.code() == endpoint_errc::invalid_port);
        CHECK(std::string(e.what()).find("\"udp:127.0.0.1:http\"") != std::string::npos);
    }
}

TEST_CASE("from_sockaddr: IPv4 and IPv6 addresses the kernel gives, a Unix-domain one is refused") {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(4000);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const auto v4 = udp_endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof in);
    REQUIRE(v4.has_value());
    CHECK(v4->to_string() == "udp:127.0.0.1:4000");

    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(4001);
    in6.sin6_addr = in6addr_loopback;
    const auto v6 = udp_endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    REQUIRE(v6.has_value());
    CHECK(v6->to_string() == "udp:[::1]:4001");

    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    const auto unix_address = udp_endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&un), sizeof un);
    REQUIRE_FALSE(unix_address.has_value());
    CHECK(unix_address.error() == std::errc::address_family_not_supported);
}
