// Strict decoding: malformed bytes are an error code plus the failing field's path, never
// a crash, an over-read or an allocation the input could not justify.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include <cluster/wire.hpp>

#include "support/messages.hpp"

struct job {
    std::uint64_t id = 0;
    std::vector<std::string> tags;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, tags))

enum class run_mode : std::uint16_t { fast = 1, safe = 2 };
BOOST_DESCRIBE_ENUM(run_mode, fast, safe)

struct config {
    std::string name;
    run_mode mode = run_mode::fast;
    bool verbose = false;
    std::optional<std::int32_t> limit;
};
BOOST_DESCRIBE_STRUCT(config, (), (name, mode, verbose, limit))

struct circle {
    double radius = 0;
};
BOOST_DESCRIBE_STRUCT(circle, (), (radius))

struct square {
    double side = 0;
};
BOOST_DESCRIBE_STRUCT(square, (), (side))

struct scene {
    std::vector<std::variant<circle, square, std::int8_t>> shapes;
};
BOOST_DESCRIBE_STRUCT(scene, (), (shapes))

struct inventory {
    std::map<std::string, std::uint32_t> counts;
};
BOOST_DESCRIBE_STRUCT(inventory, (), (counts))

struct bundle {
    std::uint32_t kind = 0;
    std::vector<std::uint64_t> data;
    std::vector<job> jobs;
    std::map<std::uint8_t, std::uint8_t> index;
    std::string text;
};
BOOST_DESCRIBE_STRUCT(bundle, (), (kind, data, jobs, index, text))

struct named {
    std::string label;
};
struct derived : named {
    std::uint16_t extra = 0;
};
BOOST_DESCRIBE_STRUCT(named, (), (label))
BOOST_DESCRIBE_STRUCT(derived, (named), (extra))

// Fixed-size all through: read as one run of fields with a single bounds check.
struct marker {
    std::uint32_t id = 0;
    bool on = false;
    run_mode mode = run_mode::fast;
};
BOOST_DESCRIBE_STRUCT(marker, (), (id, on, mode))

struct track {
    std::uint64_t id = 0;
    std::array<marker, 3> markers{};
    std::uint16_t tail = 0;
};
BOOST_DESCRIBE_STRUCT(track, (), (id, markers, tail))

struct handles {
    cluster::unique_fd first;
    cluster::unique_fd second;
};
BOOST_DESCRIBE_STRUCT(handles, (), (first, second))

struct everything {
    config cfg;
    scene drawing;
    inventory stock;
    std::vector<job> jobs;
    std::optional<derived> extra;
    std::vector<float> samples;
    std::array<bool, 3> flags{};
};
BOOST_DESCRIBE_STRUCT(everything, (), (cfg, drawing, stock, jobs, extra, samples, flags))

namespace {

namespace wire = cluster::wire;
using cluster::errc;

template <class T>
std::vector<std::byte> encode_bytes(const T& v) {
    wire::buffer out;
    wire::encode(v, out);
    return {out.bytes().begin(), out.bytes().end()};
}

template <class U>
void put(std::vector<std::byte>& out, U value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    out.insert(out.end(), p, p + sizeof value);
}

// The bytes of values in a row, as the wire holds them (native byte order).
template <class... U>
std::vector<std::byte> bytes_of(U... values) {
    std::vector<std::byte> out;
    (put(out, values), ...);
    return out;
}

template <class T>
std::string error_of(std::span<const std::byte> bytes) {
    auto r = wire::decode<T>(bytes);
    REQUIRE_FALSE(r.has_value());
    return r.error().message();
}

everything sample_everything() {
    everything e;
    e.cfg = {"primary", run_mode::safe, true, 42};
    e.drawing.shapes = {circle{1.5}, square{2.5}, std::int8_t{-3}};
    e.stock.counts = {{"apples", 3}, {"pears", 0}};
    e.jobs = {{1, {"a", "bb"}}, {2, {}}, {3, {"cccc"}}};
    e.extra = derived{{"base"}, 7};
    e.samples = {0.5f, -1.25f};
    e.flags = {true, false, true};
    return e;
}

bool is_decode_error(const std::error_code& ec) {
    return ec == errc::truncated || ec == errc::length_overflow || ec == errc::invalid_enum ||
           ec == errc::invalid_variant_index || ec == errc::invalid_value || ec == errc::trailing_bytes ||
           ec == errc::too_deep;
}

// optional<optional<...<uint8_t>>> nested N deep.
template <std::size_t N>
struct nest {
    using type = std::optional<typename nest<N - 1>::type>;
};
template <>
struct nest<0> {
    using type = std::uint8_t;
};

template <std::size_t N>
typename nest<N>::type make_nest() {
    if constexpr (N == 0)
        return 1;
    else
        return typename nest<N>::type(make_nest<N - 1>());
}

}  // namespace

TEST_CASE("every truncation of a valid encoding is an error", "[wire][strict]") {
    const auto bytes = encode_bytes(sample_everything());
    REQUIRE(wire::decode<everything>(bytes).has_value());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        CAPTURE(n);
        // Copied so ASan sees the exact end of the shortened input.
        const std::vector<std::byte> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
        auto r = wire::decode<everything>(prefix);
        REQUIRE_FALSE(r.has_value());
        REQUIRE((r.error() == errc::truncated || r.error() == errc::length_overflow));
        REQUIRE(r.error().path.starts_with("everything"));
    }
}

TEST_CASE("random bit flips decode to an error or to a value that re-encodes to the same size", "[wire][strict]") {
    const auto original = encode_bytes(sample_everything());
    std::mt19937_64 rng(2024);
    std::size_t accepted = 0;
    for (int round = 0; round < 20'000; ++round) {
        auto bytes = original;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < flips; ++i) bytes[rng() % bytes.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
        auto r = wire::decode<everything>(bytes);
        if (r) {
            ++accepted;
            REQUIRE(wire::encoded_size(*r) == bytes.size());
        } else {
            REQUIRE(is_decode_error(r.error().code));
        }
    }
    // Flips in float or integer payloads are valid values; flips in lengths, tags and bools are not.
    REQUIRE(accepted > 0);
    REQUIRE(accepted < 20'000);
}

TEST_CASE("random garbage never decodes into a crash", "[wire][strict]") {
    std::mt19937_64 rng(7);
    for (int round = 0; round < 20'000; ++round) {
        std::vector<std::byte> bytes(rng() % 96);
        for (auto& b : bytes) b = static_cast<std::byte>(rng());
        auto r = wire::decode<everything>(bytes);
        if (!r) REQUIRE(is_decode_error(r.error().code));
    }
}

TEST_CASE("errors name the field that failed", "[wire][strict]") {
    SECTION("a cut-off scalar") {
        auto bytes = encode_bytes(support::answer{1, 2});
        bytes.pop_back();
        REQUIRE(error_of<support::answer>(bytes) == "support::answer.count: truncated");
    }
    SECTION("a cut-off element of a vector") {
        auto bytes = encode_bytes(job{9, {"aaaaaaaaaa", "b", "c", "d", "e"}});
        // id, count, "aaaaaaaaaa", "b", "c", then only 2 bytes of tags[3]'s length.
        bytes.resize(8 + 4 + 14 + 5 + 5 + 2);
        REQUIRE(error_of<job>(bytes) == "job.tags[3]: truncated");
    }
    SECTION("an enum value outside the enumerators") {
        auto bytes = bytes_of(std::uint32_t{0}, std::uint16_t{3}, std::uint8_t{0}, std::uint8_t{0});
        REQUIRE(error_of<config>(bytes) == "config.mode: invalid enum value");
    }
    SECTION("a bool that is neither 0 nor 1") {
        auto bytes = bytes_of(std::uint32_t{0}, std::uint16_t{2}, std::uint8_t{2}, std::uint8_t{0});
        REQUIRE(error_of<config>(bytes) == "config.verbose: invalid value");
    }
    SECTION("a bad value or a cut inside a run of fixed-size fields") {
        const track t{1, {marker{1, true, run_mode::safe}, marker{2, false, run_mode::fast}, marker{}}, 5};
        REQUIRE(wire::decode<track>(encode_bytes(t)).value().markers[0].mode == run_mode::safe);
        // id, then 7 bytes a marker: id, on, mode.
        auto bad_bool = encode_bytes(t);
        bad_bool[8 + 7 + 4] = std::byte{2};
        REQUIRE(error_of<track>(bad_bool) == "track.markers[1].on: invalid value");
        auto bad_enum = encode_bytes(t);
        bad_enum[8 + 14 + 5] = std::byte{9};
        REQUIRE(error_of<track>(bad_enum) == "track.markers[2].mode: invalid enum value");
        auto cut = encode_bytes(t);
        cut.pop_back();
        REQUIRE(error_of<track>(cut) == "track.tail: truncated");
        cut.resize(8 + 7 + 3);
        REQUIRE(error_of<track>(cut) == "track.markers[1].id: truncated");
    }
    SECTION("an optional flag that is neither 0 nor 1") {
        auto bytes = bytes_of(std::uint32_t{0}, std::uint16_t{2}, std::uint8_t{1}, std::uint8_t{7});
        REQUIRE(error_of<config>(bytes) == "config.limit: invalid value");
    }
    SECTION("a variant index past the alternatives") {
        auto bytes = bytes_of(std::uint32_t{2}, std::uint8_t{1}, double{1.0}, std::uint8_t{3});
        REQUIRE(error_of<scene>(bytes) == "scene.shapes[1]: invalid variant index");
    }
    SECTION("a field inside a variant alternative is named through the alternative") {
        auto bytes = bytes_of(std::uint32_t{2}, std::uint8_t{2}, std::int8_t{5}, std::uint8_t{0}, std::uint32_t{0});
        REQUIRE(error_of<scene>(bytes) == "scene.shapes[1]<circle>.radius: truncated");
    }
    SECTION("map keys and values") {
        auto bytes = encode_bytes(inventory{{{"a", 1}, {"b", 2}}});
        bytes.pop_back();
        REQUIRE(error_of<inventory>(bytes) == "inventory.counts[1].value: truncated");

        std::vector<std::byte> repeated;
        put<std::uint32_t>(repeated, 2);
        for (int i = 0; i < 2; ++i) {
            put<std::uint32_t>(repeated, 1);
            repeated.push_back(std::byte{'k'});
            put<std::uint32_t>(repeated, 5);
        }
        REQUIRE(error_of<inventory>(repeated) == "inventory.counts[1].key: invalid value");
    }
    SECTION("base members are paths on the derived struct") {
        auto bytes = bytes_of(std::uint32_t{1});
        REQUIRE(error_of<derived>(bytes) == "derived.label: length exceeds the frame");
    }
    SECTION("bytes after a complete value") {
        auto bytes = encode_bytes(support::answer{1, 2});
        bytes.push_back(std::byte{0});
        REQUIRE(error_of<support::answer>(bytes) == "support::answer: trailing bytes after the value");
    }
    SECTION("a root that is not a named type starts at its first segment") {
        auto bytes = bytes_of(std::uint32_t{2}, std::uint8_t{1}, std::uint8_t{9});
        REQUIRE(error_of<std::vector<bool>>(bytes) == "[1]: invalid value");
    }
}

TEST_CASE("value() throws std::system_error carrying the code and the path", "[wire][strict]") {
    auto bytes = encode_bytes(support::answer{1, 2});
    bytes.pop_back();
    auto r = wire::decode<support::answer>(bytes);
    try {
        (void)r.value();
        FAIL("value() returned on a decode error");
    } catch (const std::system_error& e) {
        REQUIRE(e.code() == errc::truncated);
        REQUIRE(std::string(e.what()) == "support::answer.count: truncated");
    }
}

TEST_CASE("a 4 GiB length in a small frame is length_overflow, not an allocation", "[wire][strict]") {
    SECTION("vector of arithmetic") {
        auto bytes = bytes_of(std::uint32_t{1}, std::uint32_t{0xffffffffu});
        bytes.resize(20);
        auto r = wire::decode<bundle>(bytes);
        REQUIRE_FALSE(r.has_value());
        REQUIRE(r.error() == errc::length_overflow);
        REQUIRE(r.error().message() == "bundle.data: length exceeds the frame");
    }
    SECTION("vector of structs, map and string") {
        auto bytes = bytes_of(std::uint32_t{1}, std::uint32_t{0}, std::uint32_t{0xffffffffu});
        bytes.resize(20);
        REQUIRE(error_of<bundle>(bytes) == "bundle.jobs: length exceeds the frame");

        std::vector<std::byte> map_bytes;
        put<std::uint32_t>(map_bytes, 1);
        put<std::uint32_t>(map_bytes, 0);
        put<std::uint32_t>(map_bytes, 0);
        put<std::uint32_t>(map_bytes, 0x80000000u);
        map_bytes.resize(20);
        REQUIRE(error_of<bundle>(map_bytes) == "bundle.index: length exceeds the frame");

        std::vector<std::byte> string_bytes;
        put<std::uint32_t>(string_bytes, 0xfffffff0u);
        string_bytes.resize(20);
        REQUIRE(error_of<config>(string_bytes) == "config.name: length exceeds the frame");
    }
    SECTION("a count that fits the bytes only at one byte per element") {
        // 8 elements of u64 need 64 bytes; 16 are left.
        auto bytes = bytes_of(std::uint32_t{1}, std::uint32_t{8});
        bytes.resize(24);
        REQUIRE(error_of<bundle>(bytes) == "bundle.data: length exceeds the frame");
    }
}

TEST_CASE("nesting deeper than the limit is too_deep", "[wire][strict]") {
    const auto shallow = encode_bytes(make_nest<60>());
    REQUIRE(wire::decode<nest<60>::type>(shallow).has_value());

    const auto deep = encode_bytes(make_nest<70>());
    auto r = wire::decode<nest<70>::type>(deep);
    REQUIRE_FALSE(r.has_value());
    REQUIRE(r.error() == errc::too_deep);
}

TEST_CASE("fd indexes must name a received, not yet taken, descriptor", "[wire][strict][fd]") {
    auto open_null = [] { return cluster::unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); };
    SECTION("an index past the received fds") {
        auto bytes = bytes_of(std::uint32_t{0}, std::uint32_t{1});
        std::vector<cluster::unique_fd> received;
        received.push_back(open_null());
        auto r = wire::decode<handles>(bytes, received);
        REQUIRE_FALSE(r.has_value());
        REQUIRE(r.error().message() == "handles.second: file descriptor missing from the message");
    }
    SECTION("the same index twice") {
        auto bytes = bytes_of(std::uint32_t{0}, std::uint32_t{0});
        std::vector<cluster::unique_fd> received;
        received.push_back(open_null());
        received.push_back(open_null());
        auto r = wire::decode<handles>(bytes, received);
        REQUIRE_FALSE(r.has_value());
        REQUIRE(r.error() == errc::missing_fd);
        REQUIRE(r.error().path == "handles.second");
        REQUIRE(received[1].valid());  // never referenced: still the caller's
    }
    SECTION("no fds arrived at all") {
        auto bytes = bytes_of(std::uint32_t{0}, std::uint32_t{0xffffffffu});
        REQUIRE(error_of<handles>(bytes) == "handles.first: file descriptor missing from the message");
    }
}
