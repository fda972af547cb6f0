// shared_bytes: immutable shared buffers, built in sealed memfds, sent by fd or inline
// (gathered, never copied into the batch), received without copying; forged fds refused.
#include <catch2/catch.hpp>

#include "support/channels.hpp"
#include "support/descriptors.hpp"

#include <cluster/io.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/wire/shared_bytes.hpp>

#include <boost/describe.hpp>

#include <dirent.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using namespace cluster;
using namespace cluster::wire;
using cluster::ipc::channel;

namespace sb_test {

struct blob {
    std::uint64_t id = 0;
    shared_bytes bytes;
};
BOOST_DESCRIBE_STRUCT(blob, (), (id, bytes))

struct mixed {
    std::vector<std::uint8_t> filler;
    shared_bytes bytes;
};
BOOST_DESCRIBE_STRUCT(mixed, (), (filler, bytes))

struct pair_of_blobs {
    std::vector<shared_bytes> parts;
    std::string note;
};
BOOST_DESCRIBE_STRUCT(pair_of_blobs, (), (parts, note))

}  // namespace sb_test

using namespace sb_test;
using blob_proto = protocol<blob, pair_of_blobs, mixed>;

namespace {

using support::open_fd_count;

// Mappings of memfds (ours are named "cluster-…"): what a leaked value would leave.
std::size_t memfd_mapping_count() {
    std::ifstream maps("/proc/self/maps");
    std::size_t n = 0;
    for (std::string line; std::getline(maps, line);)
        if (line.find("/memfd:") != std::string::npos) ++n;
    return n;
}

std::vector<std::byte> pattern(std::size_t size, std::uint32_t seed) {
    std::vector<std::byte> v(size);
    std::uint32_t x = seed | 1;
    for (auto& b : v) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        b = static_cast<std::byte>(x);
    }
    return v;
}

shared_bytes in_memfd(std::span<const std::byte> contents) {
    shared_bytes::builder b(contents.size());
    if (!contents.empty()) std::memcpy(b.data(), contents.data(), contents.size());
    return std::move(b).freeze();
}

bool same(const shared_bytes& s, const std::vector<std::byte>& v) {
    return s.size() == v.size() && (v.empty() || std::memcmp(s.data(), v.data(), v.size()) == 0);
}

// One raw frame with fds attached, as a hostile or buggy peer could send it.
void send_raw_frame(int socket, std::span<const std::byte> payload, std::vector<int> fds) {
    const wire::frame_header h{static_cast<std::uint32_t>(payload.size()),
                               blob_proto::id<blob>,
                               blob_proto::fingerprint<blob>,
                               static_cast<std::uint16_t>(fds.size()),
                               0,
                               0};
    std::vector<std::byte> bytes(wire::frame_header_size + payload.size());
    wire::encode_header(h, std::span<std::byte, wire::frame_header_size>(bytes.data(), wire::frame_header_size));
    std::memcpy(bytes.data() + wire::frame_header_size, payload.data(), payload.size());
    iovec iov{bytes.data(), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    std::vector<std::byte> control(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    REQUIRE(::sendmsg(socket, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
}

// blob{id, bytes} whose bytes are "fd 0, size bytes": the fd is whatever is attached.
std::vector<std::byte> blob_by_fd(std::uint64_t size) {
    std::vector<std::byte> p(sizeof(std::uint64_t) + sizeof(std::uint32_t) + sizeof(std::uint64_t));
    const std::uint64_t id = 7;
    const std::uint32_t index = 0;
    std::memcpy(p.data(), &id, 8);
    std::memcpy(p.data() + 8, &index, 4);
    std::memcpy(p.data() + 12, &size, 8);
    return p;
}

// Sends one forged frame and returns what the receiving channel said about it.
std::string refusal_of(int fd, std::uint64_t declared_size, std::error_code& reason) {
    io_context ctx;
    auto [mine, theirs] = ipc::make_socket_pair().value();
    channel<blob_proto> ch(std::move(mine));
    send_raw_frame(theirs.get(), blob_by_fd(declared_size), {fd});
    auto m = sync_wait(ch.receive());
    CHECK_FALSE(m);
    reason = ch.close_reason();
    return ch.close_message();
}

}  // namespace

TEST_CASE("shared_bytes from a span copies once, then shares") {
    const auto src = pattern(1000, 1);
    shared_bytes a(std::span{src});
    CHECK(same(a, src));
    CHECK_FALSE(a.memfd_backed());
    CHECK(a.use_count() == 1);
    shared_bytes b = a;
    CHECK(b.data() == a.data());
    CHECK(a.use_count() == 2);
    CHECK(a == b);
    shared_bytes c(std::span{src});
    CHECK(c == a);
    CHECK(c.data() != a.data());
    CHECK(shared_bytes("abc").as_string_view() == "abc");
    CHECK(shared_bytes("abc") != shared_bytes("abd"));
    CHECK(shared_bytes{}.empty());
    CHECK(shared_bytes{} == shared_bytes(std::string_view{}));
    {
        shared_bytes moved = std::move(b);
        CHECK(b.empty());
        CHECK(a.use_count() == 2);
    }
    CHECK(a.use_count() == 1);
    // Large values get their own huge-page mapping; the contents are the same either way.
    const auto big = pattern(5u << 20, 2);
    shared_bytes d(std::span{big});
    CHECK(same(d, big));
}

TEST_CASE("builder writes into a memfd that freeze() seals and maps read-only") {
    const auto fds_before = open_fd_count();
    const auto maps_before = memfd_mapping_count();
    {
        const auto src = pattern(3u << 20, 3);
        shared_bytes s = in_memfd(src);
        REQUIRE(s.memfd_backed());
        CHECK(same(s, src));
        const int seals = ::fcntl(s.memfd(), F_GET_SEALS);
        CHECK(seals == (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
        // Writes through the fd fail, and so do resizing, new seals and writable mappings.
        CHECK(::pwrite(s.memfd(), "x", 1, 0) == -1);
        CHECK(errno == EPERM);
        CHECK(::ftruncate(s.memfd(), 10) == -1);
        CHECK(::fcntl(s.memfd(), F_ADD_SEALS, F_SEAL_FUTURE_WRITE) == -1);
        CHECK(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, s.memfd(), 0) == MAP_FAILED);
        shared_bytes copy = s;
        CHECK(copy.memfd() == s.memfd());
        CHECK(memfd_mapping_count() == maps_before + 1);
        CHECK(open_fd_count() == fds_before + 1);
        // Empty values may be memfd-backed too.
        shared_bytes none = in_memfd({});
        CHECK(none.memfd_backed());
        CHECK(none.empty());
    }
    CHECK(open_fd_count() == fds_before);
    CHECK(memfd_mapping_count() == maps_before);
}

TEST_CASE("shared_bytes encodes inline or as an fd, and decodes either way") {
    const auto src = pattern(70000, 4);
    blob inline_value{1, shared_bytes(std::span{src})};
    wire::buffer out;
    wire::fd_list fds;
    wire::encode(inline_value, out, fds);
    CHECK(fds.empty());
    CHECK(out.size() == 8 + 4 + 4 + src.size());
    auto back = wire::decode<blob>(out.bytes());
    REQUIRE(back.has_value());
    CHECK(back->id == 1);
    CHECK(same(back->bytes, src));

    blob fd_value{2, in_memfd(src)};
    out.clear();
    wire::encode(fd_value, out, fds);
    REQUIRE(fds.size() == 1);
    CHECK(out.size() == 8 + 4 + 8);
    std::vector<unique_fd> received;
    received.emplace_back(::fcntl(fds[0], F_DUPFD_CLOEXEC, 0));
    auto mapped = wire::decode<blob>(out.bytes(), received);
    REQUIRE(mapped.has_value());
    CHECK(mapped->bytes.memfd_backed());
    CHECK_FALSE(received[0]);  // taken by the value
    CHECK(same(mapped->bytes, src));

    // Strict decoding: a length past the end, or an fd that did not come.
    out.clear();
    wire::encode(inline_value, out, fds);
    auto cut = wire::decode<blob>(out.bytes().first(out.size() - 1));
    REQUIRE_FALSE(cut.has_value());
    CHECK(cut.error().code == errc::length_overflow);
    CHECK(cut.error().path == "sb_test::blob.bytes");
    out.clear();
    fds.clear();
    wire::encode(fd_value, out, fds);
    auto no_fd = wire::decode<blob>(out.bytes());
    REQUIRE_FALSE(no_fd.has_value());
    CHECK(no_fd.error().code == errc::missing_fd);
}

TEST_CASE("inline, gathered and memfd-backed shared_bytes cross between processes intact") {
    const auto fds_before = open_fd_count();
    const auto maps_before = memfd_mapping_count();
    const auto small = pattern(1000, 5), large = pattern(6u << 20, 6), huge = pattern(20u << 20, 7);
    ipc::channel_options inline_big;
    inline_big.memfd_threshold = 64u << 20;
    inline_big.high_water_mark = 64u << 20;  // gathered bytes count as queued too
    {
        io_context ctx;
        auto from_child =
            support::channel_from_child<blob_proto>(inline_big, [&](channel<blob_proto>& out) -> task<int> {
                const blob a{1, shared_bytes(std::span{small})};
                const blob b{2, shared_bytes(std::span{large})};  // gathered: not copied into the batch
                const blob c{3, in_memfd(huge)};                  // one fd
                if (out.queued_bytes() != 0) co_return 1;
                if (!out.try_send(a) || !out.try_send(b) || !out.try_send(c)) co_return 2;
                // The batch holds b's bytes by reference until they are written.
                if (b.bytes.use_count() != 2 || out.queued_bytes() < large.size()) co_return 3;
                if (!co_await out.flush()) co_return 4;
                if (b.bytes.use_count() != 1) co_return 5;
                pair_of_blobs two;
                two.parts = {shared_bytes(std::span{large}), in_memfd(small)};
                two.note = "two";
                if (!co_await out.send(two)) co_return 6;
                if (out.stats().memfd_frames != 0) co_return 7;
                co_return (co_await out.shutdown()) ? 0 : 8;
            });
        auto& in = from_child.first;
        auto& child = from_child.second;
        std::vector<shared_bytes> kept;
        sync_wait([&]() -> task<void> {
            auto a = co_await in.receive();
            REQUIRE(a);
            CHECK(std::get<blob>(*a).id == 1);
            CHECK(same(std::get<blob>(*a).bytes, small));
            auto b = co_await in.receive();
            INFO(in.close_message());
            REQUIRE(b);
            const shared_bytes& large_in = std::get<blob>(*b).bytes;
            CHECK(same(large_in, large));
            CHECK_FALSE(large_in.memfd_backed());
            // Shared with the receive buffer, not copied: it starts where the frame put it.
            CHECK(reinterpret_cast<std::uintptr_t>(large_in.data()) % (2u << 20) == 16);
            kept.push_back(large_in);
            auto c = co_await in.receive();
            REQUIRE(c);
            CHECK(std::get<blob>(*c).bytes.memfd_backed());
            CHECK(same(std::get<blob>(*c).bytes, huge));
            kept.push_back(std::get<blob>(*c).bytes);
            auto two = co_await in.receive();
            REQUIRE(two);
            auto& parts = std::get<pair_of_blobs>(*two).parts;
            REQUIRE(parts.size() == 2);
            CHECK(same(parts[0], large));
            CHECK(same(parts[1], small));
            CHECK(parts[1].memfd_backed());
            CHECK(std::get<pair_of_blobs>(*two).note == "two");
            auto end = co_await in.receive();  // bound first: g++ 12 evaluates a co_await inside CHECK more than once
            CHECK_FALSE(end);
        }());
        CHECK_FALSE(in.close_reason());
        auto status = sync_wait(child.wait());
        REQUIRE(status.has_value());
        INFO("child exit code " << status->code);
        CHECK(status->success());
        // The values outlive the frames they came in.
        REQUIRE(kept.size() == 2);
        CHECK(same(kept[0], large));
        CHECK(same(kept[1], huge));
    }
    CHECK(open_fd_count() == fds_before);
    CHECK(memfd_mapping_count() == maps_before);
}

TEST_CASE("large heap values go by reference, with more copied bytes, the memfd frame is shared") {
    io_context ctx;
    const auto big = pattern(3u << 20, 8);
    auto [x, y] = ipc::make_socket_pair().value();
    ipc::channel_options roomy;
    roomy.high_water_mark = 64u << 20;  // one task sends megabytes before it receives
    channel<blob_proto> a(std::move(x), roomy);
    shared_bytes kept;
    {
        channel<blob_proto> b(std::move(y));
        sync_wait([&]() -> task<void> {
            // Above the memfd threshold, but nothing of it would be copied: inline, gathered.
            const blob by_ref{9, shared_bytes(std::span{big})};
            {
                auto done = co_await a.send(by_ref);
                REQUIRE(done);
            }
            auto m = co_await b.receive();
            REQUIRE(m);
            CHECK(same(std::get<blob>(*m).bytes, big));
            CHECK(a.stats().memfd_frames == 0);
            // 1.5 MiB that would be copied: the whole message goes in a memfd, and the
            // receiver's value shares that frame's mapping.
            mixed both;
            both.filler.assign(3u << 19, 1);
            both.bytes = shared_bytes(std::span{big});
            {
                auto done = co_await a.send(both);
                REQUIRE(done);
            }
            auto n = co_await b.receive();
            REQUIRE(n);
            CHECK(std::get<mixed>(*n).filler == both.filler);
            kept = std::get<mixed>(*n).bytes;
            CHECK(reinterpret_cast<std::uintptr_t>(kept.data()) % 4096 == (4 + (3u << 19) + 8) % 4096);
            CHECK(a.stats().memfd_frames == 1);
        }());
    }
    // Its channel is gone; the mapping it shares is not.
    CHECK(same(kept, big));
}

TEST_CASE("values received inline and by fd stay valid after their channel is gone") {
    const auto fds_before = open_fd_count();
    const auto maps_before = memfd_mapping_count();
    const auto src = pattern(4u << 20, 9);
    ipc::channel_options inline_big;
    inline_big.memfd_threshold = 64u << 20;
    inline_big.high_water_mark = 64u << 20;  // one task sends it all before it receives
    std::vector<shared_bytes> kept;
    {
        io_context ctx;
        auto [x, y] = ipc::make_socket_pair().value();
        channel<blob_proto> a(std::move(x), inline_big);
        channel<blob_proto> b(std::move(y), inline_big);
        sync_wait([&]() -> task<void> {
            const blob by_ref{1, shared_bytes(std::span{src})};
            const blob by_fd{2, in_memfd(src)};
            (void)co_await a.send(by_ref);
            (void)co_await a.send(by_fd);
            for (int i = 0; i < 2; ++i) {
                auto m = co_await b.receive();
                REQUIRE(m);
                kept.push_back(std::get<blob>(*m).bytes);
            }
        }());
    }
    REQUIRE(kept.size() == 2);
    CHECK(same(kept[0], src));
    CHECK(same(kept[1], src));
    CHECK(kept[1].memfd_backed());
    kept.clear();
    CHECK(open_fd_count() == fds_before);
    CHECK(memfd_mapping_count() == maps_before);
}

namespace {

// A memfd of `size` bytes with `seals` (none: 0), as a forger would make one.
unique_fd memfd_of(std::size_t size, int seals) {
    unique_fd m(::memfd_create("forged", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    REQUIRE(::ftruncate(m.get(), static_cast<off_t>(size)) == 0);
    if (seals != 0) REQUIRE(::fcntl(m.get(), F_ADD_SEALS, seals) == 0);
    return m;
}

}  // namespace

TEST_CASE("an fd that is not a sealed memfd of the declared size is refused") {
    const auto fds_before = open_fd_count();
    std::error_code reason;
    SECTION("a pipe") {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        unique_fd r(p[0]), w(p[1]);
        auto why = refusal_of(r.get(), 16, reason);
        CHECK(reason == errc::invalid_value);
        CHECK_THAT(why, Catch::Contains("blob.bytes") && Catch::Contains("not a sealable memfd"));
    }
    SECTION("an unsealed memfd") {
        const auto m = memfd_of(4096, 0);
        auto why = refusal_of(m.get(), 4096, reason);
        CHECK(reason == errc::invalid_value);
        CHECK_THAT(why, Catch::Contains("blob.bytes") && Catch::Contains("not sealed"));
    }
    SECTION("a memfd sealed against writes but not shrinking") {
        const auto m = memfd_of(4096, F_SEAL_WRITE);
        auto why = refusal_of(m.get(), 4096, reason);
        CHECK(reason == errc::invalid_value);
        CHECK_THAT(why, Catch::Contains("not sealed"));
    }
    SECTION("a sealed memfd smaller than declared") {
        const auto m = memfd_of(100, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW);
        auto why = refusal_of(m.get(), 4096, reason);
        CHECK(reason == errc::truncated);
        CHECK_THAT(why, Catch::Contains("blob.bytes") && Catch::Contains("smaller than its declared size"));
    }
    SECTION("a sealed memfd of the declared size is accepted") {
        unique_fd m(::memfd_create("fine", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        REQUIRE(::pwrite(m.get(), "hello", 5, 0) == 5);
        REQUIRE(::fcntl(m.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK) == 0);
        io_context ctx;
        auto [mine, theirs] = ipc::make_socket_pair().value();
        channel<blob_proto> ch(std::move(mine));
        send_raw_frame(theirs.get(), blob_by_fd(5), {m.get()});
        auto got = sync_wait(ch.receive());
        REQUIRE(got);
        CHECK(std::get<blob>(*got).bytes.as_string_view() == "hello");
    }
    CHECK(open_fd_count() == fds_before);
}

TEST_CASE("large frames reuse one receive buffer, and values keep theirs") {
    io_context ctx;
    ipc::channel_options inline_big;
    inline_big.memfd_threshold = 64u << 20;
    inline_big.high_water_mark = 64u << 20;  // one task sends it all before it receives
    auto [x, y] = ipc::make_socket_pair().value();
    channel<blob_proto> a(std::move(x), inline_big);
    channel<blob_proto> b(std::move(y), inline_big);
    sync_wait([&]() -> task<void> {
        std::vector<shared_bytes> kept;
        for (std::uint32_t i = 0; i < 6; ++i) {
            const auto src = pattern((2u << 20) + i * 100000, 100 + i);
            const blob msg{i, shared_bytes(std::span{src})};
            (void)co_await a.send(msg);
            const pair_of_blobs small{{}, "small " + std::to_string(i)};
            if (i % 2) (void)co_await a.send(small);  // a small frame between: the spare buffer goes
            auto m = co_await b.receive();
            REQUIRE(m);
            REQUIRE(same(std::get<blob>(*m).bytes, src));
            if (i % 3 == 0) kept.push_back(std::get<blob>(*m).bytes);  // this one keeps its buffer
            if (i % 2) {
                auto s = co_await b.receive();
                REQUIRE(s);
                CHECK(std::get<pair_of_blobs>(*s).note == "small " + std::to_string(i));
            }
        }
        REQUIRE(kept.size() == 2);
        CHECK(same(kept[0], pattern(2u << 20, 100)));
        CHECK(same(kept[1], pattern((2u << 20) + 300000, 103)));
    }());
}

namespace {

std::size_t resident_kib() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
    return 0;
}

// Feeds one whole frame of `size` payload bytes (a blob with inline bytes) to reader.
void feed_blob(ipc::frame_reader& reader, std::uint64_t id, std::size_t size) {
    const auto contents = pattern(size, static_cast<std::uint32_t>(id));
    const blob msg{id, shared_bytes(std::span{contents})};
    wire::buffer frame;
    auto fds = wire::encode_frame<blob_proto>(frame, msg);
    REQUIRE(fds.empty());
    std::size_t fed = 0;
    while (fed < frame.size()) {
        auto room = reader.writable();
        const std::size_t n = std::min(room.size(), frame.size() - fed);
        std::memcpy(room.data(), frame.data() + fed, n);
        reader.commit(n);
        fed += n;
        if (fed < frame.size()) {
            auto none = reader.next();
            REQUIRE(none.has_value());
            REQUIRE(*none == nullptr);
        }
    }
}

}  // namespace

TEST_CASE("frame_reader keeps one large buffer warm for the next large frame, and only for that") {
    constexpr std::size_t big = 32u << 20;
    ipc::frame_reader reader(64u << 20);
    feed_blob(reader, 1, big);
    auto first = reader.next();
    REQUIRE(first.has_value());
    REQUIRE(*first != nullptr);
    REQUIRE((*first)->owner);
    const std::byte* first_buffer = (*first)->payload.data();
    {
        auto decoded =
            wire::decode_frame<blob_proto>((*first)->header, (*first)->payload, (*first)->fds, (*first)->owner);
        REQUIRE(decoded.has_value());
        CHECK(std::get<blob>(*decoded).bytes.data() == first_buffer + 16);  // shared, not copied
        reader.consume();
        CHECK(same(std::get<blob>(*decoded).bytes, pattern(big, 1)));
    }  // the value goes, its buffer goes back to the reader

    // The next large frame lands in the same (warm) buffer.
    feed_blob(reader, 2, big - 4096);
    auto second = reader.next();
    REQUIRE(second.has_value());
    REQUIRE(*second != nullptr);
    CHECK((*second)->payload.data() == first_buffer);
    reader.consume();
    const std::size_t with_spare = resident_kib();

    // A small frame next: the spare goes.
    feed_blob(reader, 3, 1000);
    auto small = reader.next();
    REQUIRE(small.has_value());
    REQUIRE(*small != nullptr);
    CHECK_FALSE((*small)->owner);
    reader.consume();
    CHECK(resident_kib() + (big >> 10) / 2 < with_spare);
}
