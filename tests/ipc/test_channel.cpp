// channel<P>: typed messages over a socketpair, in one process and across fork().
#include <catch2/catch.hpp>

#include "support/channels.hpp"
#include "support/descriptors.hpp"
#include "support/messages.hpp"

#include <cluster/io.hpp>
#include <cluster/io/scm_rights.hpp>
#include <cluster/ipc/channel.hpp>
#include <cluster/wire/frame.hpp>

#include <boost/describe.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

using namespace cluster;
using cluster::ipc::channel;
using cluster::wire::protocol;

using support::chunk;
using support::job;
using support::many_fds;
using support::pipe_end;
using proto = protocol<job, chunk, pipe_end, many_fds>;

namespace {

using support::open_fd_count;

// Chunk contents: a window into one pseudo-random table, starting where seq says, so
// every chunk differs from its neighbours and is checked with one memcmp.
constexpr std::size_t max_chunk = 16u << 20;
const std::vector<std::uint8_t>& pattern() {
    static const std::vector<std::uint8_t> table = [] {
        std::vector<std::uint8_t> t(max_chunk + 4096);
        std::uint32_t x = 2463534242u;
        for (auto& b : t) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            b = static_cast<std::uint8_t>(x);
        }
        return t;
    }();
    return table;
}

chunk make_chunk(std::uint64_t seq, std::size_t size) {
    const auto* start = pattern().data() + seq % 4096;
    return chunk{seq, std::vector<std::uint8_t>(start, start + size)};
}

bool chunk_intact(const chunk& c, std::uint64_t seq, std::size_t size) {
    return c.seq == seq && c.bytes.size() == size &&
           std::memcmp(c.bytes.data(), pattern().data() + seq % 4096, size) == 0;
}

struct pair_of_channels {
    channel<proto> a, b;
    explicit pair_of_channels(ipc::channel_options oa = {}, ipc::channel_options ob = {})
        : pair_of_channels(ipc::make_socket_pair().value(), oa, ob) {}

private:
    pair_of_channels(std::pair<unique_fd, unique_fd> fds, ipc::channel_options oa, ipc::channel_options ob)
        : a(std::move(fds.first), oa), b(std::move(fds.second), ob) {}
};

// Runs body(p) on a fresh loop with a fresh pair of channels.
template <class Body>
void with_channels(Body body) {
    io_context ctx;
    pair_of_channels p;
    sync_wait(body(p));
}

}  // namespace

TEST_CASE("messages arrive whole and in order") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        for (std::uint64_t i = 0; i < 1000; ++i) {
            // Named, not a braced temporary: GCC 12 miscompiles those across co_await.
            const job msg{i, "message " + std::to_string(i)};
            auto queued = co_await p.a.send(msg);
            REQUIRE(queued);
        }
        for (std::uint64_t i = 0; i < 1000; ++i) {
            auto m = co_await p.b.receive();
            REQUIRE(m);
            auto* got = std::get_if<job>(&*m);
            REQUIRE(got);
            CHECK(got->id == i);
            CHECK(got->text == "message " + std::to_string(i));
        }
        CHECK(p.b.stats().frames_received == 1000);
    });
}

TEST_CASE("everything sent in one loop turn goes out in one write") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        for (std::uint64_t i = 0; i < 500; ++i) REQUIRE(p.a.try_send(job{i, "x"}));
        {
            auto done = co_await p.a.flush();
            REQUIRE(done);
        }
        CHECK(p.a.stats().frames_sent == 500);
        CHECK(p.a.stats().writes == 1);
    });
}

namespace {

// Bytes waiting unread in `c`'s socket.
int unread_in(const channel<proto>& c) {
    int n = 0;
    REQUIRE(::ioctl(c.native_handle(), FIONREAD, &n) == 0);
    return n;
}

// Some loop turns: a message through another pair of channels, which leaves with the end of
// a turn and comes back in a later one, as anything scheduled to leave would have.
task<void> some_turns() {
    pair_of_channels other;
    const job ping{0, "ping"};
    REQUIRE_FALSE(other.a.queue(ping));
    auto back = co_await other.b.receive();
    REQUIRE(back);
}

}  // namespace

TEST_CASE("held messages wait for the next message, and leave ahead of it in one write") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        for (std::uint64_t i = 0; i < 3; ++i) REQUIRE_FALSE(p.a.hold(job{i, "held"}, 8));
        co_await some_turns();
        CHECK(p.a.stats().writes == 0);
        CHECK(unread_in(p.b) == 0);

        const job next{3, "sent"};
        auto sent = co_await p.a.send(next);
        REQUIRE(sent);
        for (std::uint64_t i = 0; i < 4; ++i) {
            auto m = co_await p.b.receive();
            REQUIRE(m);
            auto* got = std::get_if<job>(&*m);
            REQUIRE(got);
            CHECK(got->id == i);
        }
        CHECK(p.a.stats().writes == 1);
        CHECK(p.a.stats().frames_sent == 4);
    });
}

TEST_CASE("the most-th message held in a row sends them all, and release() and flush() send what is held") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        for (std::uint64_t i = 0; i < 8; ++i) REQUIRE_FALSE(p.a.hold(job{i, "held"}, 8));
        for (std::uint64_t i = 0; i < 8; ++i) {
            auto m = co_await p.b.receive();
            REQUIRE(m);
            CHECK(std::get<job>(*m).id == i);
        }
        CHECK(p.a.stats().writes == 1);

        // The count starts again with the next batch: seven held wait.
        for (std::uint64_t i = 8; i < 15; ++i) REQUIRE_FALSE(p.a.hold(job{i, "held"}, 8));
        co_await some_turns();
        CHECK(p.a.stats().writes == 1);
        p.a.release();
        for (std::uint64_t i = 8; i < 15; ++i) {
            auto m = co_await p.b.receive();
            REQUIRE(m);
            CHECK(std::get<job>(*m).id == i);
        }
        CHECK(p.a.stats().writes == 2);

        REQUIRE_FALSE(p.a.hold(job{15, "held"}, 8));
        auto flushed = co_await p.a.flush();
        REQUIRE(flushed);
        CHECK(p.a.stats().writes == 3);
        auto last = co_await p.b.receive();
        REQUIRE(last);
        CHECK(std::get<job>(*last).id == 15);
    });
}

TEST_CASE("a send with impossible flags throws and leaves the batch as it was") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        REQUIRE(p.a.try_send(job{1, "before"}));
        const std::size_t queued = p.a.queued_bytes();
        // An untagged request, and the memfd flag a sender may not set: no frame has them.
        REQUIRE_THROWS_AS(p.a.try_send(job{2, "untagged"}, 0, wire::frame_flags::request), std::system_error);
        REQUIRE_THROWS_AS(p.a.try_send(job{3, "memfd"}, 7, wire::frame_flags::memfd), std::system_error);
        CHECK(p.a.queued_bytes() == queued);
        REQUIRE(p.a.try_send(job{4, "after"}));
        for (std::uint64_t seq : {1u, 4u}) {
            auto m = co_await p.b.receive();
            REQUIRE(m);
            CHECK(std::get<job>(*m).id == seq);
        }
        CHECK(p.a.stats().frames_sent == 2);
    });
}

TEST_CASE("expect<T> returns the one type, and closes the channel on another") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        const job seven{7, "seven"};
        (void)co_await p.a.send(seven);
        const chunk other{8, {1, 2, 3}};  // GCC 12 cannot hold an initializer_list across co_await
        (void)co_await p.a.send(other);
        auto first = co_await p.b.expect<job>();
        REQUIRE(first);
        CHECK(first->id == 7);
        auto second = co_await p.b.expect<job>();
        CHECK_FALSE(second);
        CHECK(p.b.close_reason() == errc::unexpected_type);
        CHECK_FALSE(p.b.is_open());
    });
}

TEST_CASE("tags and flags travel in the envelope") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        const job question{1, "q"};
        (void)co_await p.a.send(question, 42, wire::frame_flags::request);
        auto e = co_await p.b.receive_envelope();
        REQUIRE(e);
        CHECK(e->tag == 42);
        CHECK(e->flags == wire::frame_flags::request);
        CHECK(std::get<job>(e->value).text == "q");
    });
}

TEST_CASE("an fd sent in a message arrives open and usable") {
    io_context ctx;
    pair_of_channels p;
    int pipefd[2];
    REQUIRE(::pipe2(pipefd, O_CLOEXEC) == 0);
    unique_fd read_end(pipefd[0]);
    const auto before = open_fd_count();
    sync_wait([&]() -> task<void> {
        {
            pipe_end msg{"writer", unique_fd(pipefd[1])};
            {
                auto done = co_await p.a.send(msg);
                REQUIRE(done);
            }
        }  // our copy closes here: the queued frame holds its own
        auto m = co_await p.b.receive();
        REQUIRE(m);
        auto& got = std::get<pipe_end>(*m);
        CHECK(got.label == "writer");
        REQUIRE(got.fd);
        CHECK((::fcntl(got.fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
        REQUIRE(::write(got.fd.get(), "hello", 5) == 5);
    }());
    char buf[8] = {};
    REQUIRE(::read(read_end.get(), buf, sizeof buf) == 5);
    CHECK(std::string(buf, 5) == "hello");
    CHECK(open_fd_count() == before - 1);  // the write end went, nothing else stayed open
}

// The primary's handoffs: it keeps each connection open until the worker answers, so the
// frame carries its descriptor as it is. Small, and above the memfd threshold, where the
// memfd is the queue's own and closes once sent.
TEST_CASE("a lent fd is sent as it is, without a dup, and stays the sender's") {
    const bool in_memfd = GENERATE(false, true);
    io_context ctx;
    ipc::channel_options sender_options;
    sender_options.memfd_threshold = 256;
    pair_of_channels p(sender_options);
    auto [read_end, write_end] = support::make_pipe();
    const pipe_end msg{std::string(in_memfd ? 1000 : 10, 'x'), std::move(write_end)};
    const auto before = open_fd_count();
    REQUIRE_FALSE(p.a.lend(msg));
    CHECK(open_fd_count() == before + (in_memfd ? 1 : 0));  // the memfd, and no dup
    sync_wait([&]() -> task<void> {
        auto m = co_await p.b.receive();
        REQUIRE(m);
        auto& got = std::get<pipe_end>(*m);
        CHECK(got.label == msg.label);
        REQUIRE(::write(got.fd.get(), "hi", 2) == 2);
    }());
    CHECK(open_fd_count() == before);  // the received copy and the memfd are gone
    REQUIRE(::write(msg.fd.get(), "!", 1) == 1);
    char buf[4] = {};
    REQUIRE(::read(read_end.get(), buf, sizeof buf) == 3);
    CHECK(std::string(buf, 3) == "hi!");
}

TEST_CASE(
    "of the fds queued, a forked child must close the channel's dups and not a lent one, which closing leaves open") {
    io_context ctx;
    pair_of_channels p;
    auto [read_end, write_end] = support::make_pipe();
    const pipe_end lent{"lent", std::move(write_end)};
    REQUIRE_FALSE(p.a.lend(lent));
    const pipe_end copied{"copied", unique_fd(::dup(read_end.get()))};
    REQUIRE_FALSE(p.a.queue(copied));
    std::vector<int> owned;
    p.a.owned_queued_fds(owned);
    REQUIRE(owned.size() == 1);  // the dup queue() made of copied's, and not lent's
    CHECK(owned[0] != copied.fd.get());
    struct stat queued = {};
    struct stat original = {};
    REQUIRE(::fstat(owned[0], &queued) == 0);
    REQUIRE(::fstat(copied.fd.get(), &original) == 0);
    CHECK(queued.st_ino == original.st_ino);
    const auto before = open_fd_count();
    p.a.close();
    CHECK(::fcntl(lent.fd.get(), F_GETFD) >= 0);
    CHECK(open_fd_count() == before - 2);  // the channel's socket and its dup, nothing else
}

TEST_CASE("more fds than one sendmsg may carry are split across writes") {
    io_context ctx;
    pair_of_channels p;
    const auto before = open_fd_count();
    sync_wait([&]() -> task<void> {
        // 3 messages × 200 fds: no single sendmsg may carry more than 253.
        for (int round = 0; round < 3; ++round) {
            many_fds msg;
            for (int i = 0; i < 200; ++i) msg.fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            {
                auto done = co_await p.a.send(msg);
                REQUIRE(done);
            }
        }
        for (int round = 0; round < 3; ++round) {
            auto m = co_await p.b.receive();
            REQUIRE(m);
            auto& got = std::get<many_fds>(*m);
            REQUIRE(got.fds.size() == 200);
            for (auto& fd : got.fds) CHECK(::fcntl(fd.get(), F_GETFD) >= 0);
        }
    }());
    CHECK(p.a.stats().writes >= 3);
    CHECK(open_fd_count() == before);
}

TEST_CASE("a payload above the memfd threshold travels in a sealed memfd") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        {
            const auto big = make_chunk(1, 3u << 20);
            auto done = co_await p.a.send(big);
            REQUIRE(done);
        }
        {
            const auto small = make_chunk(2, 1000);
            auto done = co_await p.a.send(small);
            REQUIRE(done);
        }
        auto big = co_await p.b.receive();
        REQUIRE(big);
        CHECK(chunk_intact(std::get<chunk>(*big), 1, 3u << 20));
        auto small = co_await p.b.receive();
        REQUIRE(small);
        CHECK(chunk_intact(std::get<chunk>(*small), 2, 1000));
        CHECK(p.a.stats().memfd_frames == 1);
    });
}

TEST_CASE("a large payload below the memfd threshold is copied through the socket") {
    io_context ctx;
    ipc::channel_options no_memfd;
    no_memfd.memfd_threshold = 1u << 30;
    pair_of_channels p(no_memfd);
    sync_wait([&]() -> task<void> {
        std::uint64_t received = 0;
        scope s;
        // Spawned coroutines outlive the lambda expression: what they use are parameters.
        s.spawn([](channel<proto>& in, std::uint64_t& count) -> task<void> {
            auto m = co_await in.receive();
            REQUIRE(m);
            CHECK(chunk_intact(std::get<chunk>(*m), 9, 16u << 20));
            ++count;
        }(p.b, received));
        {
            const auto big = make_chunk(9, 16u << 20);
            auto done = co_await p.a.send(big);
            REQUIRE(done);
        }
        co_await s.join();
        CHECK(received == 1);
    }());
    CHECK(p.a.stats().memfd_frames == 0);
}

TEST_CASE("a frame above the receiver's limit closes the channel with frame_too_large") {
    io_context ctx;
    ipc::channel_options small_limit;
    small_limit.max_frame_size = 1024;
    pair_of_channels p({}, small_limit);
    sync_wait([&]() -> task<void> {
        const auto small = make_chunk(1, 100), too_large = make_chunk(2, 4096);
        (void)co_await p.a.send(small);
        (void)co_await p.a.send(too_large);
        auto ok = co_await p.b.receive();
        REQUIRE(ok);
        auto refused = co_await p.b.receive();
        CHECK_FALSE(refused);
        CHECK(p.b.close_reason() == errc::frame_too_large);
        // The sender learns too: the receiver shut the socket down.
        const job after{3, "after"};
        auto late = co_await p.a.send(after);
        if (late) late = co_await p.a.flush();
        CHECK_FALSE(late);
    }());
}

TEST_CASE("sends wait above the high-water mark until the peer reads") {
    io_context ctx;
    ipc::channel_options tight;
    tight.high_water_mark = 64 * 1024;
    pair_of_channels p(tight);
    sync_wait([&]() -> task<void> {
        std::size_t sent = 0;
        scope s;
        s.spawn([](channel<proto>& out, std::size_t& count, std::size_t limit) -> task<void> {
            // 8 MiB: far more than the socket buffer and the high-water mark together.
            for (std::uint64_t i = 0; i < 128; ++i) {
                {
                    const auto c = make_chunk(i, 64 * 1024);
                    auto done = co_await out.send(c);
                    REQUIRE(done);
                }
                ++count;
                CHECK(out.queued_bytes() < limit);
            }
        }(p.a, sent, tight.high_water_mark));
        CHECK(sent < 128);  // the sender is blocked, not buffering without bound
        for (std::uint64_t i = 0; i < 128; ++i) {
            auto m = co_await p.b.receive();
            REQUIRE(m);
            REQUIRE(chunk_intact(std::get<chunk>(*m), i, 64 * 1024));
        }
        co_await s.join();
        CHECK(sent == 128);
    }());
}

TEST_CASE("shutdown ends the peer's receive cleanly") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        const job last{1, "last"};
        (void)co_await p.a.send(last);
        {
            auto done = co_await p.a.shutdown();
            REQUIRE(done);
        }
        auto m = co_await p.b.receive();
        REQUIRE(m);
        auto end = co_await p.b.receive();
        CHECK_FALSE(end);
        CHECK_FALSE(p.b.close_reason());  // clean: no error
    });
}

TEST_CASE("a peer that dies mid-frame is an eof error, not a hang or a crash") {
    io_context ctx;
    auto [mine, theirs] = ipc::make_socket_pair().value();
    channel<proto> ch(std::move(mine));
    pid_t pid = ::fork();
    if (pid == 0) {
        // Half a frame: a header announcing 1000 bytes, and 10 of them.
        wire::frame_header h{1000, proto::id<job>, proto::fingerprint<job>, 0, 0, 0};
        std::byte bytes[wire::frame_header_size + 10] = {};
        std::memcpy(bytes, &h, sizeof h);
        (void)!::write(theirs.get(), bytes, sizeof bytes);
        _exit(0);
    }
    theirs.reset();
    auto m = sync_wait(ch.receive());
    CHECK_FALSE(m);
    CHECK(ch.close_reason() == errc::eof);
    CHECK_THAT(ch.close_message(), Catch::Contains("mid-frame"));
    ::waitpid(pid, nullptr, 0);
}

TEST_CASE("garbage from the peer closes the channel with a reason") {
    io_context ctx;
    std::uint32_t seed = 12345;
    for (int round = 0; round < 200; ++round) {
        auto [mine, theirs] = ipc::make_socket_pair().value();
        channel<proto> ch(std::move(mine));
        std::vector<std::uint8_t> junk(64 + round);
        for (auto& b : junk) b = static_cast<std::uint8_t>((seed = seed * 1103515245 + 12345) >> 16);
        REQUIRE(::write(theirs.get(), junk.data(), junk.size()) == static_cast<ssize_t>(junk.size()));
        theirs.reset();
        // Either the bytes happened to form messages (then the stream still ends), or the
        // channel names what was wrong; never a crash.
        for (;;) {
            auto m = sync_wait(ch.receive());
            if (!m) break;
        }
        CHECK_FALSE(ch.is_open());
        if (ch.close_reason()) CHECK_FALSE(ch.close_message().empty());
    }
}

TEST_CASE("a peer built from different code is told apart by fingerprint") {
    io_context ctx;
    auto [x, y] = ipc::make_socket_pair().value();
    channel<protocol<support::older::job>> old_worker(std::move(x));
    channel<protocol<job>> new_primary(std::move(y));
    sync_wait([&]() -> task<void> {
        (void)co_await old_worker.send(support::older::job{5});
        auto m = co_await new_primary.receive();
        CHECK_FALSE(m);
        CHECK(new_primary.close_reason() == errc::schema_mismatch);
        CHECK_THAT(new_primary.close_message(), Catch::Contains("job"));
    }());
}

TEST_CASE("a type the receiver's protocol lacks is unknown_type") {
    io_context ctx;
    auto [x, y] = ipc::make_socket_pair().value();
    channel<proto> sender(std::move(x));
    channel<protocol<job>> receiver(std::move(y));
    sync_wait([&]() -> task<void> {
        const chunk stranger{1, {1}};  // GCC 12 cannot hold an initializer_list across co_await
        (void)co_await sender.send(stranger);
        auto m = co_await receiver.receive();
        CHECK_FALSE(m);
        CHECK(receiver.close_reason() == errc::unknown_type);
    }());
}

TEST_CASE("send to a peer that is gone is an error, never SIGPIPE") {
    io_context ctx;
    auto [x, y] = ipc::make_socket_pair().value();
    channel<proto> ch(std::move(x));
    y.reset();
    sync_wait([&]() -> task<void> {
        const job anyone{1, "anyone?"};
        auto queued = co_await ch.send(anyone);
        CHECK(queued);  // queued: the failure shows when the batch is written
        auto flushed = co_await ch.flush();
        REQUIRE_FALSE(flushed);
        CHECK(flushed.error() == std::errc::broken_pipe);
        const job still{2, "still?"};
        auto after = co_await ch.send(still);
        CHECK_FALSE(after);
    }());
}

TEST_CASE("a channel destroyed with a receive and a write in flight leaves nothing behind") {
    io_context ctx;
    const auto before = open_fd_count();
    {
        auto [x, y] = ipc::make_socket_pair().value();
        channel<proto> a(std::move(x));
        channel<proto> b(std::move(y));
        scope s;
        // Nobody sends to b and nobody reads a: b's receive and b's write both stay pending.
        s.spawn([](channel<proto>& in) -> task<void> { (void)co_await in.receive(); }(b));
        s.spawn([](channel<proto>& out) -> task<void> {
            for (std::uint64_t i = 0; i < 128; ++i) {
                const auto c = make_chunk(i, 64 * 1024);
                (void)co_await out.send(c);
            }
        }(b));
        // A nop completes at once, so this turn returns with the rest of b's batch
        // waiting in io_uring for socket room that never comes.
        s.spawn([]() -> task<void> { (void)co_await io::nop(); }());
        ctx.run_once();
        CHECK(b.queued_bytes() > 0);
        CHECK(ctx.in_flight() >= 2);  // b's receive and the rest of its write
        // The scope goes first (declared last): its tasks are destroyed mid-await, then the
        // channels cancel their own ops and wait for the kernel to let go of their buffers.
    }
    CHECK(open_fd_count() == before);
}

TEST_CASE("close() releases the socket at once and wakes whoever waits on the channel") {
    io_context ctx;
    const auto before = open_fd_count();
    ipc::channel_options tight;
    tight.high_water_mark = 64 * 1024;
    pair_of_channels p({}, tight);
    sync_wait([&]() -> task<void> {
        std::optional<result<void>> blocked_send;
        bool receive_ended = false;
        scope s;
        // Nobody reads a: b's sender blocks above the high-water mark, with a write in flight.
        s.spawn([](channel<proto>& out, std::optional<result<void>>& last) -> task<void> {
            for (std::uint64_t i = 0;; ++i) {
                const auto c = make_chunk(i, 64 * 1024);
                auto sent = co_await out.send(c);
                if (!sent) {
                    last = sent;
                    co_return;
                }
            }
        }(p.b, blocked_send));
        s.spawn([](channel<proto>& in, bool& ended) -> task<void> {
            auto m = co_await in.receive();
            ended = !m;
        }(p.b, receive_ended));
        co_await io::nop();
        REQUIRE_FALSE(blocked_send);
        p.b.close();
        CHECK(open_fd_count() == before + 1);  // only a's end is left
        co_await s.join();
        REQUIRE(blocked_send);
        CHECK(blocked_send->error() == errc::channel_closed);
        CHECK(receive_ended);
        const job late{1, "late"};
        auto later = co_await p.b.send(late);
        CHECK(later.error() == errc::channel_closed);
        auto none = co_await p.b.receive();
        CHECK_FALSE(none);
        p.b.close();  // twice is harmless
    }());
}

TEST_CASE("1 GiB streams between two processes in order and intact") {
    io_context ctx;
    constexpr std::size_t chunk_size = 256 * 1024;
    constexpr std::uint64_t chunks = (1u << 30) / chunk_size;
    auto from_child = support::channel_from_child<proto>({}, [&](channel<proto>& out) -> task<int> {
        // Bound first: g++ 12 miscompiles co_await used directly as a condition.
        for (std::uint64_t i = 0; i < chunks; ++i) {
            const auto c = make_chunk(i, chunk_size);
            auto queued = co_await out.send(c);
            if (!queued) co_return 1;
        }
        auto closed = co_await out.shutdown();
        co_return closed ? 0 : 2;
    });
    auto& in = from_child.first;
    auto& child = from_child.second;
    std::uint64_t good = 0;
    sync_wait([&]() -> task<void> {
        while (auto m = co_await in.receive()) {
            auto* c = std::get_if<chunk>(&*m);
            if (c && chunk_intact(*c, good, chunk_size)) ++good;
        }
    }());
    CHECK(good == chunks);
    CHECK_FALSE(in.close_reason());
    auto status = sync_wait(child.wait());
    REQUIRE(status.has_value());
    CHECK(status->success());
}

namespace {

// Writes one frame of `msg` to `to` with `fds` attached, as a peer that ignores the protocol's
// rules about fds may.
template <class T>
void send_raw(int to, const T& msg, const std::vector<int>& fds) {
    wire::buffer out;
    (void)wire::encode_frame<proto>(out, msg);
    iovec iov{out.data(), out.size()};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    std::vector<std::byte> control;
    io::attach_fds(m, control, fds);
    REQUIRE(::sendmsg(to, &m, MSG_NOSIGNAL) == static_cast<ssize_t>(out.size()));
}

std::vector<unique_fd> open_dev_null(std::size_t n) {
    std::vector<unique_fd> out;
    for (std::size_t i = 0; i < n; ++i) out.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    return out;
}

std::vector<int> raw(const std::vector<unique_fd>& fds) {
    std::vector<int> out;
    for (const auto& fd : fds) out.push_back(fd.get());
    return out;
}

// Lowers this process's descriptor limit to `limit` until destroyed.
class lowered_fd_limit {
public:
    explicit lowered_fd_limit(rlim_t limit) {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved_) == 0);
        rlimit lower = saved_;
        lower.rlim_cur = limit;
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lower) == 0);
    }
    lowered_fd_limit(const lowered_fd_limit&) = delete;
    lowered_fd_limit& operator=(const lowered_fd_limit&) = delete;
    ~lowered_fd_limit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

private:
    rlimit saved_{};
};

}  // namespace

// A channel whose peer writes raw frames with fds attached, however many they announce:
// `send(peer)` writes them; the checks say what the channel made of it.
template <class Send>
void with_raw_peer(Send send, const std::string& why) {
    io_context ctx;
    const auto before = open_fd_count();
    auto [mine, theirs] = ipc::make_socket_pair().value();
    channel<proto> ch(std::move(mine));
    const std::size_t good = send(theirs.get());
    // The frames before the offence are delivered; nothing after it is read.
    for (std::size_t i = 0; i < good; ++i) CHECK(sync_wait(ch.receive()));
    CHECK_FALSE(sync_wait(ch.receive()));
    CHECK(ch.close_reason() == make_error_code(errc::stray_fd));
    CHECK_THAT(ch.close_message(), Catch::Contains(why));
    CHECK(open_fd_count() <= before + 2);  // the socketpair, and none of the fds it sent
}

TEST_CASE("fds a frame does not announce are closed, and cut the peer off") {
    with_raw_peer(
        [](int peer) -> std::size_t {
            auto extra = open_dev_null(200);
            send_raw(peer, job{1, "no fds announced"}, raw(extra));
            send_raw(peer, job{2, "again"}, raw(extra));
            return 1;  // the first frame itself is good; what came with it is not
        },
        "200 fds not announced");
}

TEST_CASE("more fds than the frame announces are closed, and cut the peer off") {
    with_raw_peer(
        [](int peer) -> std::size_t {
            auto fds = open_dev_null(100);
            const pipe_end msg{"one announced", std::move(fds.front())};
            auto all = raw(fds);
            all.front() = msg.fd.get();
            send_raw(peer, msg, all);
            return 0;
        },
        "1 fds announced, 100 arrived");
}

TEST_CASE("each frame's fds arrive with it, however frames with and without fds interleave") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        std::vector<std::array<unique_fd, 2>> pipes;
        for (int i = 0; i < 20; ++i) {
            pipes.push_back(support::make_pipe());
            REQUIRE(p.a.try_send(job{static_cast<std::uint64_t>(i), "between"}));
            REQUIRE(p.a.try_send(pipe_end{std::to_string(i), unique_fd(::dup(pipes.back()[1].get()))}));
        }
        co_await p.a.flush();
        for (int i = 0; i < 20; ++i) {
            auto j = co_await p.b.receive();
            REQUIRE(j);
            CHECK(std::get<job>(*j).id == static_cast<std::uint64_t>(i));
            auto m = co_await p.b.receive();
            REQUIRE(m);
            auto& end = std::get<pipe_end>(*m);
            REQUIRE(end.label == std::to_string(i));
            // The write end this frame named, and no other: its own pipe hears it.
            REQUIRE(::write(end.fd.get(), "x", 1) == 1);
            char c = 0;
            CHECK(::read(pipes[static_cast<std::size_t>(i)][0].get(), &c, 1) == 1);
        }
        CHECK(p.a.stats().writes >= 20);
    });
}

TEST_CASE("a frame whose fds the kernel could not give us arrives without them, and the link goes on") {
    io_context ctx;
    pair_of_channels p;
    sync_wait([&]() -> task<void> {
        {
            many_fds msg;
            msg.fds = open_dev_null(50);
            (void)p.a.send(msg);
            REQUIRE(p.a.try_send(job{7, "after"}));
            auto flushed = co_await p.a.flush();
            REQUIRE(flushed);
        }
        std::optional<proto::variant> m;
        {
            // Room for about 10 of the 50: the kernel installs what fits and closes the rest.
            const lowered_fd_limit limit(open_fd_count() + 10);
            m = co_await p.b.receive();
        }
        REQUIRE(m);
        const auto& got = std::get<many_fds>(*m).fds;
        REQUIRE(got.size() == 50);
        const auto received = std::count_if(got.begin(), got.end(), [](const unique_fd& fd) { return fd.valid(); });
        CHECK(received > 0);
        CHECK(received < 50);
        CHECK(p.b.fds_lost() == static_cast<std::uint64_t>(50 - received));
        auto next = co_await p.b.receive();
        REQUIRE(next);
        CHECK(std::get<job>(*next).id == 7);
        CHECK(p.b.is_open());
    }());
}

namespace {

// The frames of jobs first..last-1, as one stream: every third a request tagged with its id + 1.
wire::buffer job_frames(std::uint64_t first, std::uint64_t last) {
    wire::buffer out;
    for (std::uint64_t i = first; i < last; ++i) {
        const bool request = i % 3 == 0;
        (void)wire::encode_frame<proto>(out, job{i, "job " + std::to_string(i)},
                                        request ? static_cast<std::uint32_t>(i + 1) : 0,
                                        request ? wire::frame_flags::request : std::uint16_t{0});
    }
    return out;
}

void write_all(int to, std::span<const std::byte> bytes) {
    REQUIRE(::write(to, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
}

// Bytes the kernel holds for `fd` that no read has taken yet.
int unread_bytes(int fd) {
    int n = -1;
    REQUIRE(::ioctl(fd, FIONREAD, &n) == 0);
    return n;
}

// The job a received envelope must hold, as job_frames() framed it.
void check_job(const std::optional<ipc::envelope<proto>>& e, std::uint64_t i) {
    REQUIRE(e);
    const auto* j = std::get_if<job>(&e->value);
    REQUIRE(j);
    CHECK(j->id == i);
    CHECK(j->text == "job " + std::to_string(i));
    CHECK(e->tag == (i % 3 == 0 ? i + 1 : 0));
    CHECK(e->flags == (i % 3 == 0 ? wire::frame_flags::request : 0));
}

}  // namespace

TEST_CASE("frames that arrive together are each decoded from the one receive, in order") {
    io_context ctx;
    auto [mine, theirs] = ipc::make_socket_pair().value();
    channel<proto> ch(std::move(mine));
    const auto frames = job_frames(0, 100);
    write_all(theirs.get(), frames.bytes());
    sync_wait([&]() -> task<void> {
        for (std::uint64_t i = 0; i < 100; ++i) {
            auto e = co_await ch.receive_envelope();
            check_job(e, i);
            // The first receive took every frame: the rest are decoded from its buffer.
            if (i == 0) CHECK(unread_bytes(ch.native_handle()) == 0);
        }
    }());
    CHECK(ch.stats().frames_received == 100);
    CHECK(ch.stats().bytes_received == frames.size());
}

TEST_CASE("a frame split across receives is decoded once its last byte arrives") {
    io_context ctx;
    // Two whole frames, then the third cut: in its header, at its end, in its payload.
    const auto frames = job_frames(0, 3);
    const std::size_t third = job_frames(0, 2).size();
    for (std::size_t cut : {third + 1, third + wire::frame_header_size - 1, third + wire::frame_header_size,
                            third + wire::frame_header_size + 5, frames.size() - 1}) {
        auto [mine, theirs] = ipc::make_socket_pair().value();
        channel<proto> ch(std::move(mine));
        const int peer = theirs.get();  // clang 14 captures no structured binding
        write_all(peer, frames.bytes().first(cut));
        sync_wait([&]() -> task<void> {
            for (std::uint64_t i = 0; i < 2; ++i) {
                auto e = co_await ch.receive_envelope();
                check_job(e, i);
            }
            auto receive_third = [&]() -> task<std::optional<ipc::envelope<proto>>> {
                auto e = co_await ch.receive_envelope();
                co_return e;
            };
            // Once the channel has read what came of the third frame, and is waiting for the rest.
            auto write_the_rest = [&]() -> task<void> {
                while (unread_bytes(ch.native_handle()) != 0) {
                    auto turned = co_await io::nop();
                    REQUIRE(turned);
                }
                CHECK(ch.stats().frames_received == 2);
                write_all(peer, frames.bytes().subspan(cut));
            };
            auto [e, written] = co_await io::when_all(receive_third(), write_the_rest());
            (void)written;
            check_job(e, 2);
        }());
        CHECK(ch.stats().frames_received == 3);
    }
}

TEST_CASE("a frame with fds amid a run of plain frames takes its fds, and the run goes on") {
    with_channels([&](pair_of_channels& p) -> task<void> {
        auto pipe = support::make_pipe();
        for (std::uint64_t i = 0; i < 10; ++i) REQUIRE(p.a.try_send(job{i, "before"}));
        REQUIRE(p.a.try_send(pipe_end{"amid", unique_fd(::dup(pipe[1].get()))}));
        for (std::uint64_t i = 10; i < 20; ++i) REQUIRE(p.a.try_send(job{i, "after"}));
        auto flushed = co_await p.a.flush();
        REQUIRE(flushed);
        for (std::uint64_t i = 0; i < 21; ++i) {
            auto m = co_await p.b.receive();
            REQUIRE(m);
            if (i == 10) {
                auto& end = std::get<pipe_end>(*m);
                CHECK(end.label == "amid");
                REQUIRE(::write(end.fd.get(), "x", 1) == 1);
                char c = 0;
                CHECK(::read(pipe[0].get(), &c, 1) == 1);
            } else {
                CHECK(std::get<job>(*m).id == (i < 10 ? i : i - 1));
            }
        }
        CHECK(p.b.stats().frames_received == 21);
    });
}

namespace {

// A batch of job frames 0..4 in which frame 2 is spoilt by `spoil` (given its first byte):
// the channel hands out jobs 0 and 1, then closes with `why`, naming `what`.
template <class Spoil>
void check_spoilt_batch(Spoil spoil, errc why, const std::string& what, ipc::channel_options options = {}) {
    io_context ctx;
    auto [mine, theirs] = ipc::make_socket_pair().value();
    channel<proto> ch(std::move(mine), options);
    auto frames = job_frames(0, 5);
    spoil(frames.data() + job_frames(0, 2).size());
    write_all(theirs.get(), frames.bytes());
    sync_wait([&]() -> task<void> {
        for (std::uint64_t i = 0; i < 2; ++i) {
            auto e = co_await ch.receive_envelope();
            check_job(e, i);
        }
        auto after = co_await ch.receive();
        CHECK_FALSE(after);
        auto later = co_await ch.receive();
        CHECK_FALSE(later);
    }());
    CHECK(ch.close_reason() == why);
    CHECK_THAT(ch.close_message(), Catch::Contains(what));
    CHECK(ch.stats().frames_received == 2);
}

template <class T>
void poke(std::byte* at, T value) {
    std::memcpy(at, &value, sizeof value);
}

}  // namespace

TEST_CASE("a bad frame amid a batch closes the channel after the good frames before it") {
    SECTION("another build's fingerprint") {
        check_spoilt_batch([](std::byte* f) { poke(f + offsetof(wire::frame_header, fingerprint), std::uint64_t{42}); },
                           errc::schema_mismatch, "job");
    }
    SECTION("a type the protocol lacks") {
        check_spoilt_batch([](std::byte* f) { poke(f + offsetof(wire::frame_header, type_id), std::uint32_t{7}); },
                           errc::unknown_type, "type id 0x7");
    }
    SECTION("a string longer than the payload") {
        const std::size_t text_length = wire::frame_header_size + sizeof(std::uint64_t);
        check_spoilt_batch([&](std::byte* f) { poke(f + text_length, std::uint32_t{1000}); }, errc::length_overflow,
                           "text");
    }
    SECTION("a header that does not check out") {
        check_spoilt_batch([](std::byte* f) { poke(f + offsetof(wire::frame_header, flags), std::uint16_t{0x100}); },
                           errc::bad_frame, "header");
    }
    SECTION("a frame above the receiver's limit") {
        ipc::channel_options small;
        small.max_frame_size = 17;  // the payload of "job 0" to "job 4"
        check_spoilt_batch(
            [](std::byte* f) { poke(f + offsetof(wire::frame_header, payload_size), std::uint32_t{18}); },
            errc::frame_too_large, "18 byte payload, limit 17", small);
    }
}
