// io::read_exact, write_all and their socket forms: whole buffers across many partial
// transfers, end of stream as errc::eof with what did arrive, a write to a gone reader.
#include <catch2/catch.hpp>

#include "support/descriptors.hpp"

#include <cluster/io.hpp>
#include <cluster/io/transfer.hpp>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstddef>
#include <span>
#include <vector>

using namespace cluster;

namespace {

std::vector<std::byte> pattern(std::size_t n) {
    std::vector<std::byte> out(n);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::byte>((i * 7 + i / 509) % 251);
    return out;
}

// Reads `fd` to its end in small pieces, so that the writer has to wait for room.
task<std::vector<std::byte>> drain_in_pieces(int fd) {
    std::vector<std::byte> got;
    std::byte piece[3000];
    for (;;) {
        auto n = co_await io::read(fd, std::span(piece));
        REQUIRE(n.has_value());
        if (*n == 0) co_return got;
        got.insert(got.end(), piece, piece + *n);
    }
}

task<void> write_then_close(int fd, std::span<const std::byte> bytes, unique_fd& owner) {
    auto written = co_await io::write_all(fd, bytes);
    CHECK(written.has_value());
    owner.reset();
}

}  // namespace

TEST_CASE("write_all and read_exact move 4 MiB through a 64 KiB pipe, across partial transfers") {
    io_context ctx;
    auto first = support::make_pipe();  // named, not bound: clang 14 cannot capture bindings
    auto& r = first[0];
    auto& w = first[1];
    const auto sent = pattern(4u << 20);
    sync_wait([&]() -> task<void> {
        scope writer;
        writer.spawn(write_then_close(w.get(), sent, w));
        auto got = co_await drain_in_pieces(r.get());
        co_await writer.join();
        CHECK(got == sent);
    }());

    auto second = support::make_pipe();
    auto& r2 = second[0];
    auto& w2 = second[1];
    sync_wait([&]() -> task<void> {
        scope writer;
        writer.spawn(write_then_close(w2.get(), std::span(sent).first(200'000), w2));
        std::vector<std::byte> got(200'000);
        auto read = co_await io::read_exact(r2.get(), got);
        CHECK(read.has_value());
        co_await writer.join();
        CHECK(std::equal(got.begin(), got.end(), sent.begin()));
    }());
}

TEST_CASE("read_exact at an early end of stream is errc::eof, with what did come in the buffer") {
    io_context ctx;
    auto first = support::make_pipe();  // named, not bound: clang 14 cannot capture bindings
    auto& r = first[0];
    auto& w = first[1];
    REQUIRE(::write(w.get(), "abc", 3) == 3);
    w.reset();
    std::vector<std::byte> buf(10, std::byte{'-'});
    auto read = sync_wait(io::read_exact(r.get(), buf));
    REQUIRE_FALSE(read.has_value());
    CHECK(read.error() == errc::eof);
    CHECK(buf[0] == std::byte{'a'});
    CHECK(buf[2] == std::byte{'c'});
    CHECK(buf[3] == std::byte{'-'});
}

TEST_CASE("send_all and recv_exact over a socketpair, a send to a closed peer is EPIPE, not SIGPIPE") {
    io_context ctx;
    auto pair = support::make_socketpair();
    auto& a = pair[0];
    auto& b = pair[1];
    const auto sent = pattern(1u << 20);
    sync_wait([&]() -> task<void> {
        std::vector<std::byte> got(sent.size());
        auto [s, r] = co_await when_all(io::send_all(a.get(), sent), io::recv_exact(b.get(), got));
        CHECK(s.has_value());
        CHECK(r.has_value());
        CHECK(got == sent);
    }());
    b.reset();
    const support::sigpipe_default guard;
    auto refused = sync_wait(io::send_all(a.get(), sent));
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error() == std::errc::broken_pipe);
}
