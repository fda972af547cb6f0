// Wire codec: every supported type round-trips (property-style, seeded), the documented
// byte layout holds, runs are bulk-copied, and fds travel by index into the SCM_RIGHTS list.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include <cluster/wire.hpp>

namespace app {

enum class color : std::uint8_t { red = 1, green = 2, blue = 40 };
BOOST_DESCRIBE_ENUM(color, red, green, blue)

enum class level : std::int32_t { low = -5, mid = 0, high = 1'000'000 };
BOOST_DESCRIBE_ENUM(level, low, mid, high)

struct point {
    float x = 0;
    float y = 0;
    friend bool operator==(const point&, const point&) = default;
};
BOOST_DESCRIBE_STRUCT(point, (), (x, y))

struct shape_base {
    std::string label;
    color fill = color::red;
    friend bool operator==(const shape_base&, const shape_base&) = default;
};
BOOST_DESCRIBE_STRUCT(shape_base, (), (label, fill))

struct circle : shape_base {
    point center;
    double radius = 0;
    friend bool operator==(const circle&, const circle&) = default;
};
BOOST_DESCRIBE_STRUCT(circle, (shape_base), (center, radius))

struct polygon : shape_base {
    std::vector<point> corners;
    friend bool operator==(const polygon&, const polygon&) = default;
};
BOOST_DESCRIBE_STRUCT(polygon, (shape_base), (corners))

struct scalars {
    bool b = false;
    char c = 0;
    signed char sc = 0;
    unsigned char uc = 0;
    std::int16_t i16 = 0;
    std::uint16_t u16 = 0;
    std::int32_t i32 = 0;
    std::uint32_t u32 = 0;
    std::int64_t i64 = 0;
    std::uint64_t u64 = 0;
    float f = 0;
    double d = 0;
    level lvl = level::mid;
    std::chrono::nanoseconds ns{};
    std::chrono::duration<double> seconds{};
    friend bool operator==(const scalars&, const scalars&) = default;
};
BOOST_DESCRIBE_STRUCT(scalars, (), (b, c, sc, uc, i16, u16, i32, u32, i64, u64, f, d, lvl, ns, seconds))

struct kitchen_sink {
    scalars s;
    std::string text;
    std::vector<std::uint8_t> bytes;
    std::vector<float> samples;
    std::vector<bool> bits;
    std::array<std::int32_t, 4> quad{};
    std::array<std::string, 2> pair_of_names;
    std::optional<point> maybe_point;
    std::optional<std::string> maybe_text;
    std::variant<std::monostate, circle, polygon, std::int64_t> shape;
    std::vector<std::variant<circle, polygon>> scene;
    std::map<std::string, std::vector<point>> paths;
    std::unordered_map<std::uint32_t, color> palette;
    std::vector<std::optional<std::map<std::int16_t, std::string>>> nested;
    friend bool operator==(const kitchen_sink&, const kitchen_sink&) = default;
};
BOOST_DESCRIBE_STRUCT(kitchen_sink, (),
                      (s, text, bytes, samples, bits, quad, pair_of_names, maybe_point, maybe_text, shape, scene, paths,
                       palette, nested))

struct header_and_name {
    std::uint32_t id = 0;
    std::string name;
};
BOOST_DESCRIBE_STRUCT(header_and_name, (), (id, name))

struct with_fds {
    std::string note;
    cluster::unique_fd fd;
    std::optional<cluster::unique_fd> spare;
    std::vector<cluster::unique_fd> more;
};
BOOST_DESCRIBE_STRUCT(with_fds, (), (note, fd, spare, more))

// Counts its moves and copies: decode() is to build the value where its caller gets it.
struct counted {
    static inline int moves = 0;
    std::uint32_t n = 0;
    counted() = default;
    counted(const counted& other) : n(other.n) { ++moves; }
    counted(counted&& other) noexcept : n(other.n) { ++moves; }
    counted& operator=(const counted&) = default;
    counted& operator=(counted&&) = default;
    ~counted() = default;
};
BOOST_DESCRIBE_STRUCT(counted, (), (n))

}  // namespace app

namespace {

namespace wire = cluster::wire;

// Random values of any codec-supported type, to drive the round-trip properties.
class generator {
public:
    explicit generator(std::uint64_t seed) : rng_(seed) {}

    template <class T>
    void fill(T& v, int depth = 0) {
        if constexpr (std::is_same_v<T, bool>) {
            v = (rng_() & 1) != 0;
        } else if constexpr (std::is_integral_v<T>) {
            v = static_cast<T>(rng_());
        } else if constexpr (std::is_floating_point_v<T>) {
            v = std::uniform_real_distribution<T>(-1e6, 1e6)(rng_);
        } else if constexpr (std::is_enum_v<T>) {
            fill_enum(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
            v.resize(count(40));
            for (char& c : v) c = static_cast<char>(rng_());
        } else if constexpr (requires {
                                 typename T::rep;
                                 typename T::period;
                             }) {
            typename T::rep r{};
            fill(r);
            v = T(r);
        } else if constexpr (std::is_same_v<T, std::monostate>) {
        } else if constexpr (boost::describe::has_describe_members<T>::value) {
            fill_struct(v, depth);
        } else {
            fill_template(v, depth);
        }
    }

private:
    std::size_t count(std::size_t max) { return rng_() % (max + 1); }

    template <class E>
    void fill_enum(E& v) {
        using values = boost::describe::describe_enumerators<E>;
        const auto pick = count(boost::mp11::mp_size<values>::value - 1);
        std::size_t i = 0;
        boost::mp11::mp_for_each<values>([&](auto d) {
            if (i++ == pick) v = d.value;
        });
    }

    template <class T>
    void fill_struct(T& v, int depth) {
        using namespace boost::describe;
        boost::mp11::mp_for_each<describe_bases<T, mod_public>>([&](auto d) {
            using base = typename decltype(d)::type;
            fill(static_cast<base&>(v), depth);
        });
        boost::mp11::mp_for_each<describe_members<T, mod_public>>([&](auto d) { fill(v.*d.pointer, depth + 1); });
    }

    template <class T>
    void fill_template(std::vector<T>& v, int depth) {
        v.clear();
        const std::size_t n = count(depth > 2 ? 2 : 6);
        for (std::size_t i = 0; i < n; ++i) {
            T e{};
            fill(e, depth + 1);
            v.push_back(std::move(e));
        }
    }
    template <class T, std::size_t N>
    void fill_template(std::array<T, N>& v, int depth) {
        for (auto& e : v) fill(e, depth + 1);
    }
    template <class T>
    void fill_template(std::optional<T>& v, int depth) {
        if (rng_() & 1)
            fill(v.emplace(), depth + 1);
        else
            v.reset();
    }
    template <class... Ts>
    void fill_template(std::variant<Ts...>& v, int depth) {
        boost::mp11::mp_with_index<sizeof...(Ts)>(count(sizeof...(Ts) - 1),
                                                  [&](auto i) { fill(v.template emplace<i>(), depth + 1); });
    }
    template <class Map>
        requires requires { typename Map::mapped_type; }
    void fill_template(Map& m, int depth) {
        m.clear();
        const std::size_t n = count(depth > 2 ? 2 : 5);
        for (std::size_t i = 0; i < n; ++i) {
            typename Map::key_type k{};
            typename Map::mapped_type val{};
            fill(k, depth + 1);
            fill(val, depth + 1);
            m.emplace(std::move(k), std::move(val));
        }
    }

    std::mt19937_64 rng_;
};

template <class T>
concept encodable_without_fd_list = requires(const T& m, wire::buffer& b) { wire::encode(m, b); };

template <class T>
wire::buffer encode_all(const T& v) {
    wire::buffer out;
    wire::encode(v, out);
    return out;
}

template <class T>
void check_round_trip(const T& v) {
    const auto bytes = encode_all(v);
    REQUIRE(bytes.size() == wire::encoded_size(v));
    auto decoded = wire::decode<T>(bytes.bytes());
    REQUIRE(decoded.has_value());
    REQUIRE(*decoded == v);
}

std::vector<std::byte> to_bytes(std::initializer_list<int> values) {
    std::vector<std::byte> out;
    for (int v : values) out.push_back(static_cast<std::byte>(v));
    return out;
}

template <class U>
void append_scalar(std::vector<std::byte>& out, U value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    out.insert(out.end(), p, p + sizeof value);
}

}  // namespace

TEST_CASE("random nested values of every supported type round-trip", "[wire][codec]") {
    for (std::uint64_t seed = 1; seed <= 3000; ++seed) {
        CAPTURE(seed);
        generator gen(seed);
        app::kitchen_sink v;
        gen.fill(v);
        check_round_trip(v);
    }
}

TEST_CASE("decoding then re-encoding reproduces the bytes of map-free values", "[wire][codec]") {
    for (std::uint64_t seed = 1; seed <= 1000; ++seed) {
        CAPTURE(seed);
        generator gen(seed);
        std::vector<std::variant<app::circle, app::polygon>> scene;
        gen.fill(scene);
        const auto first = encode_all(scene);
        auto decoded = wire::decode<decltype(scene)>(first.bytes());
        REQUIRE(decoded.has_value());
        const auto second = encode_all(*decoded);
        REQUIRE(std::ranges::equal(first.bytes(), second.bytes()));
    }
}

TEST_CASE("scalar extremes round-trip bit for bit", "[wire][codec]") {
    app::scalars lo;
    lo.b = false;
    lo.c = std::numeric_limits<char>::min();
    lo.sc = std::numeric_limits<signed char>::min();
    lo.i16 = std::numeric_limits<std::int16_t>::min();
    lo.i32 = std::numeric_limits<std::int32_t>::min();
    lo.i64 = std::numeric_limits<std::int64_t>::min();
    lo.f = std::numeric_limits<float>::lowest();
    lo.d = -std::numeric_limits<double>::denorm_min();
    lo.lvl = app::level::low;
    lo.ns = std::chrono::nanoseconds::min();
    check_round_trip(lo);

    app::scalars hi;
    hi.b = true;
    hi.uc = 255;
    hi.u16 = std::numeric_limits<std::uint16_t>::max();
    hi.u32 = std::numeric_limits<std::uint32_t>::max();
    hi.u64 = std::numeric_limits<std::uint64_t>::max();
    hi.f = std::numeric_limits<float>::infinity();
    hi.d = std::numeric_limits<double>::max();
    hi.lvl = app::level::high;
    hi.ns = std::chrono::nanoseconds::max();
    hi.seconds = std::chrono::duration<double>(1.5);
    check_round_trip(hi);

    const double nan = std::numeric_limits<double>::quiet_NaN();
    auto decoded = wire::decode<double>(encode_all(nan).bytes());
    REQUIRE(decoded.has_value());
    REQUIRE(std::memcmp(&*decoded, &nan, sizeof nan) == 0);
}

TEST_CASE("the encoding follows the documented layout", "[wire][codec]") {
    SECTION("struct fields in order, string as u32 length then chars") {
        const auto bytes = encode_all(app::header_and_name{7, "ab"});
        std::vector<std::byte> expected;
        append_scalar<std::uint32_t>(expected, 7);
        append_scalar<std::uint32_t>(expected, 2);
        expected.push_back(std::byte{'a'});
        expected.push_back(std::byte{'b'});
        REQUIRE(std::ranges::equal(bytes.bytes(), expected));
    }
    SECTION("bases come before the derived struct's own members") {
        app::circle c;
        c.label = "c";
        c.fill = app::color::blue;
        c.center = {1.0f, 2.0f};
        c.radius = 3.0;
        std::vector<std::byte> expected;
        append_scalar<std::uint32_t>(expected, 1);
        expected.push_back(std::byte{'c'});
        append_scalar<std::uint8_t>(expected, 40);
        append_scalar(expected, 1.0f);
        append_scalar(expected, 2.0f);
        append_scalar(expected, 3.0);
        REQUIRE(std::ranges::equal(encode_all(c).bytes(), expected));
    }
    SECTION("bool, optional flag and variant index are one byte each") {
        REQUIRE(std::ranges::equal(encode_all(true).bytes(), to_bytes({1})));
        REQUIRE(std::ranges::equal(encode_all(std::optional<std::uint8_t>{}).bytes(), to_bytes({0})));
        REQUIRE(std::ranges::equal(encode_all(std::optional<std::uint8_t>{9}).bytes(), to_bytes({1, 9})));
        REQUIRE(std::ranges::equal(encode_all(std::variant<std::uint16_t, std::uint8_t>{std::uint8_t{5}}).bytes(),
                                   to_bytes({1, 5})));
    }
    SECTION("arrays carry no count, maps a u32 count then key-value pairs") {
        REQUIRE(wire::encoded_size(std::array<std::int32_t, 4>{}) == 16);
        const std::map<std::uint8_t, std::uint8_t> m{{1, 2}, {3, 4}};
        REQUIRE(std::ranges::equal(encode_all(m).bytes(), to_bytes({2, 0, 0, 0, 1, 2, 3, 4})));
    }
}

TEST_CASE("arithmetic runs are one contiguous copy of the elements", "[wire][codec]") {
    std::vector<float> samples(100'000);
    for (std::size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<float>(i) * 0.5f;
    const auto bytes = encode_all(samples);
    REQUIRE(bytes.size() == 4 + samples.size() * sizeof(float));
    REQUIRE(std::memcmp(bytes.data() + 4, samples.data(), samples.size() * sizeof(float)) == 0);
    check_round_trip(samples);

    std::vector<std::uint8_t> blob(1 << 20, 0xab);
    check_round_trip(blob);
    check_round_trip(std::string(70'000, 'x'));
    check_round_trip(std::vector<std::uint64_t>{});
}

// Short runs are copied by overlapping fixed-size pieces, which differ by length.
TEST_CASE("strings and byte vectors of every short length encode exactly", "[wire][codec]") {
    for (std::size_t n = 0; n <= 40; ++n) {
        std::string s(n, '\0');
        for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + i % 26);
        const auto bytes = encode_all(s);
        REQUIRE(bytes.size() == 4 + n);
        REQUIRE(std::memcmp(bytes.data() + 4, s.data(), n) == 0);
        check_round_trip(s);
        check_round_trip(std::vector<std::uint8_t>(s.begin(), s.end()));
    }
}

TEST_CASE("encoded_size is exact and computed without encoding", "[wire][codec]") {
    generator gen(99);
    for (int i = 0; i < 200; ++i) {
        app::kitchen_sink v;
        gen.fill(v);
        wire::buffer out;
        wire::encode(v, out);
        wire::encode(v, out);  // appends: a second message follows the first
        REQUIRE(out.size() == 2 * wire::encoded_size(v));
        const auto half = out.bytes().first(out.size() / 2);
        REQUIRE(wire::decode<app::kitchen_sink>(half).value() == v);
    }
}

TEST_CASE("unique_fd travels as an index into the SCM_RIGHTS list", "[wire][codec][fd]") {
    int ends[2];
    REQUIRE(::pipe2(ends, O_CLOEXEC) == 0);
    cluster::unique_fd read_end(ends[0]);

    app::with_fds msg;
    msg.note = "take this";
    msg.fd = cluster::unique_fd(ends[1]);
    msg.more.emplace_back();  // an empty unique_fd is encoded as "no fd", not as an index

    static_assert(wire::carries_fds<app::with_fds>);
    static_assert(!encodable_without_fd_list<app::with_fds>, "a message with fds needs an fd list to be encoded");
    static_assert(encodable_without_fd_list<app::circle>);

    wire::buffer out;
    wire::fd_list fds;
    wire::encode(msg, out, fds);
    REQUIRE(fds == wire::fd_list{ends[1]});

    // What the receiver gets from SCM_RIGHTS: new descriptors for the same open files.
    std::vector<cluster::unique_fd> received;
    received.emplace_back(::fcntl(fds[0], F_DUPFD_CLOEXEC, 0));
    REQUIRE(received[0].valid());
    const int received_number = received[0].get();

    auto decoded = wire::decode<app::with_fds>(out.bytes(), received);
    REQUIRE(decoded.has_value());
    REQUIRE(decoded->note == "take this");
    REQUIRE(decoded->fd.get() == received_number);
    REQUIRE_FALSE(received[0].valid());  // ownership moved into the message
    REQUIRE_FALSE(decoded->spare.has_value());
    REQUIRE(decoded->more.size() == 1);
    REQUIRE_FALSE(decoded->more[0].valid());

    msg.fd.reset();  // only the decoded copy keeps the pipe's write end open now
    REQUIRE(::write(decoded->fd.get(), "ping", 4) == 4);
    decoded->fd.reset();
    char got[8] = {};
    REQUIRE(::read(read_end.get(), got, sizeof got) == 4);
    REQUIRE(std::string(got, 4) == "ping");
    REQUIRE(::read(read_end.get(), got, sizeof got) == 0);  // every write end is closed
}

TEST_CASE("several fds are numbered in encoding order", "[wire][codec][fd]") {
    app::with_fds msg;
    msg.fd = cluster::unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    msg.spare = cluster::unique_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    msg.more.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    wire::buffer out;
    wire::fd_list fds;
    wire::encode(msg, out, fds);
    REQUIRE(fds == wire::fd_list{msg.fd.get(), msg.spare->get(), msg.more[0].get()});

    std::vector<cluster::unique_fd> received;
    for (int fd : fds) received.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    const std::vector<int> numbers{received[0].get(), received[1].get(), received[2].get()};
    auto decoded = wire::decode<app::with_fds>(out.bytes(), received);
    REQUIRE(decoded.has_value());
    REQUIRE(decoded->fd.get() == numbers[0]);
    REQUIRE(decoded->spare->get() == numbers[1]);
    REQUIRE(decoded->more[0].get() == numbers[2]);
}

TEST_CASE("the schema spells types canonically, not as the compiler does", "[wire][codec]") {
    REQUIRE(wire::schema<app::circle>() ==
            "{label:string;fill:enum<u8>{red=1;green=2;blue=40;};center:{x:f32;y:f32;};radius:f64;}");
    REQUIRE(wire::schema<std::map<std::string, std::chrono::milliseconds>>() == "map<string,duration<i64,1/1000>>");
    REQUIRE(wire::schema<std::unordered_map<std::string, std::chrono::milliseconds>>() ==
            wire::schema<std::map<std::string, std::chrono::milliseconds>>());
    REQUIRE(wire::schema<std::variant<std::monostate, std::optional<cluster::unique_fd>, std::array<char, 3>>>() ==
            "variant<none,optional<fd>,array<char,3>>");
    REQUIRE(wire::schema<app::level>() == "enum<i32>{low=-5;mid=0;high=1000000;}");
}

// Regression: g++ 12 moved every decoded value once (6 ns of a 10 ns encode+decode) after
// decode() gained a second, discarded return statement.
TEST_CASE("decode builds the value in place: no move or copy of it", "[wire][codec]") {
    app::counted sent;
    sent.n = 7;
    wire::buffer out;
    wire::encode(sent, out);
    app::counted::moves = 0;
    auto back = wire::decode<app::counted>(out.bytes());
    REQUIRE(back.has_value());
    REQUIRE(back->n == 7);
    REQUIRE(app::counted::moves == 0);
}
