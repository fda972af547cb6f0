// cluster::net::sticky_key, the value: its factories, the bound on a name, and the
// command-line form parse_sticky_key() reads.
#include <catch2/catch.hpp>

#include <cluster/net/sticky_key.hpp>

#include <stdexcept>
#include <string>
#include <type_traits>

using namespace cluster::net;

TEST_CASE("sticky_key: each source with its name, and the address, which peeks at nothing") {
    const auto h = sticky_key::header("X-Forwarded-For");
    CHECK(h.from == sticky_key::source::header);
    CHECK(h.name() == "X-Forwarded-For");
    CHECK(h.peeks());
    CHECK(sticky_key::cookie("sid").name() == "sid");
    CHECK(sticky_key::query("room").from == sticky_key::source::query);
    CHECK_FALSE(sticky_key::address().peeks());
    CHECK(sticky_key::address().name().empty());
    STATIC_REQUIRE(std::is_trivially_destructible_v<sticky_key>);
}

TEST_CASE("sticky_key: a name of max_key_name bytes is kept whole, one byte more is refused") {
    const std::string longest(max_key_name, 'k');
    CHECK(sticky_key::cookie(longest).name() == longest);
    CHECK_THROWS_AS(sticky_key::cookie(longest + "k"), std::length_error);
    CHECK_FALSE(parse_sticky_key("cookie:" + longest + "k"));
}

TEST_CASE("parse_sticky_key: address and KIND:NAME, and nothing for anything else") {
    const auto k = parse_sticky_key("header:X-Real-IP");
    REQUIRE(k);
    CHECK(k->from == sticky_key::source::header);
    CHECK(k->name() == "X-Real-IP");
    CHECK(parse_sticky_key("query:sid")->from == sticky_key::source::query);
    CHECK_FALSE(parse_sticky_key("address")->peeks());
    for (const char* bad : {"", "cookie", "cookie:", "body:sid", ":sid", "Cookie:sid"})
        CHECK_FALSE(parse_sticky_key(bad));
}
