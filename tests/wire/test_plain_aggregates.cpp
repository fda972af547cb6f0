// Structs written the C way, with no default member initialisers, decode without a
// warning under -O2 -Wall -Werror (g++ once saw "used uninitialized" in the decoder's
// skip of value-initialisation) and without reading a member before it is written.
#include <catch2/catch.hpp>

#include <cluster/wire.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace plain {

struct point {
    double x;
    double y;
};
BOOST_DESCRIBE_STRUCT(point, (), (x, y))

struct path {
    std::uint64_t id;
    std::string name;
    std::vector<point> points;
    point origin;
};
BOOST_DESCRIBE_STRUCT(path, (), (id, name, points, origin))

// Only arithmetic members: the shape g++ warned about.
struct tally {
    std::uint64_t id;
    std::size_t words;
};
BOOST_DESCRIBE_STRUCT(tally, (), (id, words))

}  // namespace plain

using plain_protocol = cluster::protocol<plain::path, plain::tally>;

TEST_CASE("an aggregate without member initialisers round-trips") {
    const plain::path in{42, "route", {{1.5, 2.5}, {3.5, -4.5}}, {0.25, 0.75}};
    cluster::wire::buffer buf;
    cluster::wire::encode(in, buf);
    auto out = cluster::wire::decode<plain::path>(buf.bytes());
    REQUIRE(out.has_value());
    CHECK(out->id == 42);
    CHECK(out->name == "route");
    REQUIRE(out->points.size() == 2);
    CHECK(out->points[1].y == -4.5);
    CHECK(out->origin.x == 0.25);
    CHECK(out->origin.y == 0.75);
}

TEST_CASE("a failed decode of such an aggregate is an error, never a half-built value") {
    const plain::path in{7, "short", {}, {1, 2}};
    cluster::wire::buffer buf;
    cluster::wire::encode(in, buf);
    auto out = cluster::wire::decode<plain::path>(buf.bytes().first(buf.size() - 3));
    REQUIRE_FALSE(out.has_value());
    CHECK(out.error() == cluster::errc::truncated);
}

TEST_CASE("an all-arithmetic aggregate decodes directly and through a protocol") {
    cluster::wire::buffer buf;
    cluster::wire::encode(plain::tally{9, 1234}, buf);
    auto direct = cluster::wire::decode<plain::tally>(buf.bytes());
    REQUIRE(direct.has_value());
    CHECK(direct->words == 1234);
    auto via = plain_protocol::decode(plain_protocol::id<plain::tally>, plain_protocol::fingerprint<plain::tally>,
                                      buf.bytes());
    REQUIRE(via.has_value());
    CHECK(std::get<plain::tally>(*via).id == 9);
}
