// protocol<Ts...> and frames: stable type ids and fingerprints, compile-time membership,
// runtime dispatch with unknown_type / schema_mismatch, and the 24-byte frame header.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <cluster/wire.hpp>

#include "support/messages.hpp"

// Two builds of "the same" message: one peer has an extra member.
namespace v1 {
struct job {
    static constexpr std::string_view cluster_name = "job";
    std::uint64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(job, (), (id))
}  // namespace v1

namespace v2 {
struct job {
    static constexpr std::string_view cluster_name = "job";
    std::uint64_t id = 0;
    std::string text;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, text))
}  // namespace v2

// Same shape as support::job under other names: a member rename is a schema change,
// a nested struct's own name is not.
namespace renamed {
struct job {
    std::uint64_t id = 0;
    std::string body;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, body))

struct inner_a {
    int v = 0;
};
BOOST_DESCRIBE_STRUCT(inner_a, (), (v))
struct inner_b {
    int v = 0;
};
BOOST_DESCRIBE_STRUCT(inner_b, (), (v))
struct outer_a {
    inner_a in;
};
BOOST_DESCRIBE_STRUCT(outer_a, (), (in))
struct outer_b {
    inner_b in;
};
BOOST_DESCRIBE_STRUCT(outer_b, (), (in))
}  // namespace renamed

struct external {
    int v = 0;
};
BOOST_DESCRIBE_STRUCT(external, (), (v))

template <>
struct cluster::wire::name_of<external> {
    static constexpr std::string_view value = "vendor.external";
};

namespace {

namespace wire = cluster::wire;
using cluster::errc;
using proto = cluster::protocol<support::job, support::answer, support::pipe_end>;

template <class T>
std::vector<std::byte> payload_of(const T& msg) {
    wire::buffer out;
    wire::encode(msg, out);
    return {out.bytes().begin(), out.bytes().end()};
}

template <class T, class P>
concept framed_in = requires(wire::buffer& b, const T& m) { wire::encode_frame<P>(b, m); };

}  // namespace

TEST_CASE("type names come from the compiler or an opt-in, identically on g++ and clang++", "[wire][protocol]") {
    STATIC_REQUIRE(wire::type_name<support::job>() == "support::job");
    STATIC_REQUIRE(wire::type_name<v1::job>() == "job");
    STATIC_REQUIRE(wire::type_name<external>() == "vendor.external");
    // Pinned values: the same source must give the same id and fingerprint under every
    // compiler this test is built with, or peers built by different compilers could not talk.
    STATIC_REQUIRE(wire::type_id<support::job> == 0x512ca807u);
    STATIC_REQUIRE(wire::fingerprint<support::job> == 0xc60e0dd3ce26fb7dull);
}

TEST_CASE("a type's id does not depend on its position in the protocol", "[wire][protocol]") {
    using reordered = cluster::protocol<support::pipe_end, support::answer, support::job>;
    STATIC_REQUIRE(proto::id<support::job> == reordered::id<support::job>);
    STATIC_REQUIRE(proto::id<support::answer> == reordered::id<support::answer>);
    STATIC_REQUIRE(proto::fingerprint<support::pipe_end> == reordered::fingerprint<support::pipe_end>);
    STATIC_REQUIRE(proto::id<support::job> != proto::id<support::answer>);
    STATIC_REQUIRE(proto::name<support::answer> == "support::answer");

    // A message encoded for one ordering decodes with the other.
    const auto payload = payload_of(support::answer{4, 2});
    auto decoded = reordered::decode(proto::id<support::answer>, proto::fingerprint<support::answer>, payload);
    REQUIRE(decoded.has_value());
    REQUIRE(std::get<support::answer>(*decoded).count == 2);
}

TEST_CASE("membership is checked at compile time", "[wire][protocol]") {
    STATIC_REQUIRE(proto::contains<support::job>);
    STATIC_REQUIRE_FALSE(proto::contains<support::not_in_protocol>);
    STATIC_REQUIRE(wire::message_of<support::answer, proto>);
    STATIC_REQUIRE_FALSE(wire::message_of<support::not_in_protocol, proto>);
    STATIC_REQUIRE(framed_in<support::job, proto>);
    STATIC_REQUIRE_FALSE(framed_in<support::not_in_protocol, proto>);
    STATIC_REQUIRE(std::is_same_v<proto::variant, std::variant<support::job, support::answer, support::pipe_end>>);
}

TEST_CASE("duplicate type ids are detected", "[wire][protocol]") {
    STATIC_REQUIRE(wire::distinct_type_ids<support::job, support::answer, support::pipe_end>);
    STATIC_REQUIRE_FALSE(wire::distinct_type_ids<support::job, support::answer, support::job>);
    STATIC_REQUIRE_FALSE(wire::distinct_type_ids<v1::job, v2::job>);  // same opt-in name
}

TEST_CASE("decode dispatches on the type id", "[wire][protocol]") {
    const auto payload = payload_of(support::job{7, "seven words"});
    auto decoded = proto::decode(proto::id<support::job>, proto::fingerprint<support::job>, payload);
    REQUIRE(decoded.has_value());
    REQUIRE(decoded->index() == 0);
    REQUIRE(std::get<support::job>(*decoded).text == "seven words");
}

TEST_CASE("an id outside the protocol is unknown_type", "[wire][protocol]") {
    const auto payload = payload_of(support::job{});
    auto decoded = proto::decode(0xdeadbeefu, 0, payload);
    REQUIRE_FALSE(decoded.has_value());
    REQUIRE(decoded.error() == errc::unknown_type);
    REQUIRE(decoded.error().message() == "type id 0xdeadbeef: unknown message type");
}

TEST_CASE("an empty protocol carries no message and refuses every frame", "[wire][protocol]") {
    using none = wire::protocol<>;
    STATIC_REQUIRE(none::size == 0);
    STATIC_REQUIRE_FALSE(none::contains<support::job>);
    STATIC_REQUIRE_FALSE(framed_in<support::job, none>);
    const auto payload = payload_of(support::job{1, "x"});
    auto decoded = none::decode(proto::id<support::job>, proto::fingerprint<support::job>, payload);
    REQUIRE_FALSE(decoded.has_value());
    REQUIRE(decoded.error() == errc::unknown_type);
    std::optional<wire::decode_error> error;
    wire::detail::reader r(payload, {});
    REQUIRE_FALSE(none::decode_in_place(proto::id<support::job>, proto::fingerprint<support::job>, r, error));
    REQUIRE(error);
    REQUIRE(error->code == errc::unknown_type);
}

TEST_CASE("a known id with another fingerprint is schema_mismatch naming the type", "[wire][protocol]") {
    STATIC_REQUIRE(wire::type_id<v1::job> == wire::type_id<v2::job>);
    STATIC_REQUIRE(wire::fingerprint<v1::job> != wire::fingerprint<v2::job>);

    using old_proto = cluster::protocol<v1::job>;
    using new_proto = cluster::protocol<v2::job>;
    const auto payload = payload_of(v1::job{3});
    auto decoded = new_proto::decode(old_proto::id<v1::job>, old_proto::fingerprint<v1::job>, payload);
    REQUIRE_FALSE(decoded.has_value());
    REQUIRE(decoded.error() == errc::schema_mismatch);
    REQUIRE(decoded.error().message() == "job: schema fingerprint mismatch (peer built from different code)");
}

TEST_CASE("the fingerprint follows member names and shapes, not nested type names", "[wire][protocol]") {
    STATIC_REQUIRE(wire::fingerprint<support::job> != wire::fingerprint<renamed::job>);
    STATIC_REQUIRE(wire::fingerprint<renamed::outer_a> == wire::fingerprint<renamed::outer_b>);
    STATIC_REQUIRE(wire::fingerprint<std::vector<std::int32_t>> != wire::fingerprint<std::vector<std::uint32_t>>);
    STATIC_REQUIRE(wire::fingerprint<std::optional<int>> != wire::fingerprint<std::vector<int>>);
}

TEST_CASE("field errors from a protocol decode carry the message type as root", "[wire][protocol]") {
    auto payload = payload_of(support::answer{1, 2});
    payload.pop_back();
    auto decoded = proto::decode(proto::id<support::answer>, proto::fingerprint<support::answer>, payload);
    REQUIRE_FALSE(decoded.has_value());
    REQUIRE(decoded.error().message() == "support::answer.count: truncated");
}

TEST_CASE("frame headers are 24 bytes and round-trip", "[wire][frame]") {
    STATIC_REQUIRE(wire::frame_header_size == 24);
    const wire::frame_header h{100, 0x12345678u, 0x1122334455667788ull, 2, wire::frame_flags::request, 77};
    std::array<std::byte, wire::frame_header_size> bytes{};
    wire::encode_header(h, bytes);
    std::uint32_t size_field = 0;
    std::memcpy(&size_field, bytes.data(), 4);
    REQUIRE(size_field == 100);
    auto parsed = wire::parse_header(bytes);
    REQUIRE(parsed.has_value());
    REQUIRE(*parsed == h);
}

TEST_CASE("nonsense frame headers are bad_frame", "[wire][frame]") {
    auto parse = [](wire::frame_header h) {
        std::array<std::byte, wire::frame_header_size> bytes{};
        wire::encode_header(h, bytes);
        return wire::parse_header(bytes);
    };
    const wire::frame_header good{16, 1, 2, 0, 0, 0};
    REQUIRE(parse(good).has_value());

    using spoil = void (*)(wire::frame_header&);
    const std::pair<const char*, spoil> nonsense[] = {
        {"reserved flags", [](wire::frame_header& h) { h.flags = 0x8000; }},
        {"request and response at once",
         [](wire::frame_header& h) {
             h.flags = wire::frame_flags::request | wire::frame_flags::response;
             h.tag = 1;
         }},
        {"a response without a tag", [](wire::frame_header& h) { h.flags = wire::frame_flags::response; }},
        {"fds without room for their indexes", [](wire::frame_header& h) { h.fd_count = 5; }},  // 5 need 20 bytes
        {"more fds than a message carries",
         [](wire::frame_header& h) {
             h.payload_size = 4096;
             h.fd_count = 254;
         }},
        {"a memfd frame without its fd", [](wire::frame_header& h) { h.flags = wire::frame_flags::memfd; }},
    };
    for (const auto& [what, spoiled] : nonsense) {
        INFO(what);
        auto h = good;
        spoiled(h);
        REQUIRE(parse(h).error() == errc::bad_frame);
    }

    // A memfd frame's last fd is the payload, so it needs no index in the payload.
    auto memfd_frame = good;
    memfd_frame.payload_size = 4;
    memfd_frame.flags = wire::frame_flags::memfd;
    memfd_frame.fd_count = 2;
    REQUIRE(parse(memfd_frame).has_value());
    REQUIRE(wire::message_fd_count(memfd_frame) == 1);
    memfd_frame.fd_count = 3;
    REQUIRE(parse(memfd_frame).error() == errc::bad_frame);

    const std::array<std::byte, 23> short_bytes{};
    REQUIRE(wire::parse_header(short_bytes).error() == errc::truncated);
}

TEST_CASE("whole frames batch into one buffer and decode back, fds included", "[wire][frame]") {
    int ends[2];
    REQUIRE(::pipe2(ends, O_CLOEXEC) == 0);
    cluster::unique_fd read_end(ends[0]);

    wire::buffer out;
    const auto no_fds = wire::encode_frame<proto>(out, support::job{1, "first"});
    REQUIRE(no_fds.empty());
    const std::size_t first_frame = out.size();
    REQUIRE(first_frame == wire::frame_header_size + wire::encoded_size(support::job{1, "first"}));

    support::pipe_end h{"worker-2", cluster::unique_fd(ends[1])};
    const auto fds = wire::encode_frame<proto>(out, h, 9, wire::frame_flags::request);
    REQUIRE(fds == wire::fd_list{ends[1]});

    // First frame.
    auto header1 = wire::parse_header(out.bytes());
    REQUIRE(header1.has_value());
    REQUIRE(header1->type_id == proto::id<support::job>);
    REQUIRE(header1->fd_count == 0);
    auto msg1 =
        wire::decode_frame<proto>(*header1, out.bytes().subspan(wire::frame_header_size, header1->payload_size), {});
    REQUIRE(msg1.has_value());
    REQUIRE(std::get<support::job>(*msg1).text == "first");

    // Second frame, right after the first.
    const auto rest = out.bytes().subspan(first_frame);
    auto header2 = wire::parse_header(rest);
    REQUIRE(header2.has_value());
    REQUIRE(header2->tag == 9);
    REQUIRE(header2->flags == wire::frame_flags::request);
    REQUIRE(header2->fd_count == 1);
    REQUIRE(rest.size() == wire::frame_header_size + header2->payload_size);

    std::vector<cluster::unique_fd> received;
    received.emplace_back(::fcntl(fds[0], F_DUPFD_CLOEXEC, 0));
    h.fd.reset();
    auto msg2 = wire::decode_frame<proto>(*header2, rest.subspan(wire::frame_header_size), received);
    REQUIRE(msg2.has_value());
    auto& handoff = std::get<support::pipe_end>(*msg2);
    REQUIRE(handoff.label == "worker-2");
    REQUIRE(::write(handoff.fd.get(), "x", 1) == 1);
    char c = 0;
    REQUIRE(::read(read_end.get(), &c, 1) == 1);
    REQUIRE(c == 'x');

    // Fewer fds than the header promised.
    auto missing = wire::decode_frame<proto>(*header2, rest.subspan(wire::frame_header_size), {});
    REQUIRE(missing.error() == errc::missing_fd);
}

TEST_CASE("an impossible frame is refused at encode time and leaves the buffer as it was", "[wire][frame]") {
    wire::buffer out;
    (void)wire::encode_frame<proto>(out, support::answer{1, 1});
    const std::size_t before = out.size();
    REQUIRE_THROWS_AS(wire::encode_frame<proto>(out, support::answer{2, 2}, 0, wire::frame_flags::request),
                      std::system_error);
    REQUIRE_THROWS_AS(wire::encode_frame<proto>(out, support::answer{2, 2}, 5, 0x4000), std::system_error);
    REQUIRE_THROWS_AS(wire::encode_frame<proto>(out, support::answer{2, 2}, 0, wire::frame_flags::memfd),
                      std::system_error);
    REQUIRE(out.size() == before);
}

TEST_CASE("routed frames name a worker in the tag and are neither requests nor responses", "[wire][frame]") {
    const wire::frame_header plain{16, 1, 2, 0, 0, 0};
    auto routed = [&](std::uint16_t flags, std::uint32_t tag) {
        auto h = plain;
        h.flags = flags;
        h.tag = tag;
        return h;
    };
    auto parse = [](wire::frame_header h) {
        std::array<std::byte, wire::frame_header_size> bytes{};
        wire::encode_header(h, bytes);
        return wire::parse_header(bytes);
    };
    constexpr auto r = wire::frame_flags::routed;
    STATIC_REQUIRE(r == 8);
    for (std::uint32_t tag : {1u, 42u, wire::frame_flags::all_workers}) {
        CHECK(wire::header_is_valid(routed(r, tag)));
        CHECK(parse(routed(r, tag)).has_value());
    }
    for (const auto& bad :
         {routed(r, 0), routed(r | wire::frame_flags::request, 5), routed(r | wire::frame_flags::response, 5)}) {
        CHECK_FALSE(wire::header_is_valid(bad));
        CHECK(parse(bad).error() == errc::bad_frame);
    }

    wire::buffer out;
    const support::job sent{3, "to worker 7"};
    (void)wire::encode_frame<proto>(out, sent, 7, r);
    auto header = wire::parse_header(out.bytes());
    REQUIRE(header.has_value());
    CHECK(header->flags == r);
    CHECK(header->tag == 7);
    auto decoded = wire::decode_frame<proto>(*header, out.bytes().subspan(wire::frame_header_size), {});
    REQUIRE(decoded.has_value());
    CHECK(std::get<support::job>(*decoded).text == "to worker 7");

    const std::size_t before = out.size();
    REQUIRE_THROWS_AS(wire::encode_frame<proto>(out, sent, 0, r), std::system_error);
    REQUIRE_THROWS_AS(wire::encode_frame<proto>(out, sent, 7, r | wire::frame_flags::request), std::system_error);
    CHECK(out.size() == before);
}
