// cluster::listener on its own, fed as a worker's channel feeds it (no primary): handed
// connections taken by accept(), their counts, drained(), refusals at max_connections,
// close() giving back what was not taken and telling the primary under every schedule, and
// the end of a handed connection.
//
// Note for g++ 12: results of co_await are always named before they are tested.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/net/listen_socket.hpp>
#include <cluster/net/listener.hpp>
#include <cluster/net/tcp_stream.hpp>

#include "support/loopback.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <stop_token>
#include <string_view>
#include <utility>
#include <vector>

using namespace cluster;
using namespace cluster::net;

namespace {

// What the listener tells the primary, written down.
struct recording_host final : net::detail::listener_host {
    std::vector<std::pair<std::uint64_t, bool>> acks;
    int closes = 0;
    int unlistens = 0;
    void acknowledge(std::uint64_t seq, bool accepted) noexcept override { acks.emplace_back(seq, accepted); }
    std::vector<bool> room_again;  // each close's
    void report_closed(std::uint32_t, bool room) noexcept override {
        ++closes;
        room_again.push_back(room);
    }
    void send_answers() noexcept override {}
    void report_unlisten(std::uint32_t) noexcept override { ++unlistens; }
};

std::shared_ptr<net::detail::listener_state> handed_state(net::detail::listener_host* host, schedule how,
                                                          std::size_t max_connections = 0) {
    listener_options o;
    o.max_connections = max_connections;
    return std::make_shared<net::detail::listener_state>(host, 1, how, endpoint{}, unique_fd{}, o);
}

// A client and the server end of its connection, as the primary would have accepted it.
struct connection {
    tcp_stream client;
    unique_fd server;
};

task<connection> connect_one(int listen_fd) {
    auto pair = co_await support::connect_pair(listen_fd);
    connection c{std::move(pair.client), pair.server.release()};
    co_return std::move(c);
}

// A listener fed as a worker's channel feeds it, and what it told the primary.
struct fed_listener {
    recording_host host;
    std::shared_ptr<net::detail::listener_state> state;
    listener l;
    explicit fed_listener(schedule how, std::size_t max_connections = 0)
        : state(handed_state(&host, how, max_connections)), l(state) {}
};

unique_fd dup_of(const unique_fd& fd) { return unique_fd(::dup(fd.get())); }

// n new connections, offered to `state` as the primary hands them over (seq 1 to n); the
// server ends stay open here, as the primary's copies.
task<std::vector<connection>> hand_over(int listen_fd, net::detail::listener_state& state, std::uint64_t n) {
    std::vector<connection> out;
    for (std::uint64_t seq = 1; seq <= n; ++seq) {
        out.push_back(co_await connect_one(listen_fd));
        state.offer(seq, dup_of(out.back().server));
    }
    co_return out;
}

}  // namespace

// The primary keeps its copy of a connection it handed over until it reads the worker's
// acknowledgement; the worker closing the stream must end the connection even so.
TEST_CASE("a handed connection ends when the worker closes it, though the primary still holds it") {
    support::with_listening(endpoint::tcp("127.0.0.1", 0), [](int lfd) -> task<void> {
        for (const bool by_close : {true, false}) {
            auto c = co_await connect_one(lfd);
            auto state = handed_state(nullptr, schedule::round_robin);
            state->offer(1, dup_of(c.server));  // c.server stays open: the primary's copy
            listener handed(state);
            auto stream = co_await handed.accept();
            REQUIRE(stream.has_value());
            auto w = co_await stream->write(std::string_view("bye"));
            REQUIRE(w.has_value());
            if (by_close) {
                auto closed = co_await stream->close();
                REQUIRE(closed.has_value());
            } else {
                tcp_stream gone = std::move(*stream);  // ends here, by its destructor
            }
            char buf[8] = {};
            auto r = co_await c.client.read(buf);  // EOF now, not when the primary's copy closes
            REQUIRE_FALSE(r.has_value());
            CHECK(r.error() == errc::eof);
            CHECK(std::string_view(buf, 3) == "bye");
            CHECK(::fcntl(c.server.get(), F_GETFD) != -1);
        }
    });
}

TEST_CASE("accept() acknowledges each connection it takes, counts it, and drained() waits until all are closed") {
    support::with_listening(endpoint::tcp("127.0.0.1", 0), [](int lfd) -> task<void> {
        fed_listener f(schedule::least_connections);
        auto clients = co_await hand_over(lfd, *f.state, 2);
        auto first = co_await f.l.accept();
        auto second = co_await f.l.accept();
        REQUIRE(first.has_value());
        REQUIRE(second.has_value());
        CHECK(f.host.acks == std::vector<std::pair<std::uint64_t, bool>>{{1, true}, {2, true}});
        CHECK(f.l.accepted() == 2);
        CHECK(f.l.connections() == 2);

        bool drained = false;
        auto waiter = [](listener& l, bool& drained) -> task<void> {
            const bool all = co_await l.drained();
            CHECK(all);
            drained = true;
        };
        auto closer = [](tcp_stream& a, tcp_stream& b, const bool& drained, listener& l) -> task<void> {
            auto one = co_await a.close();
            REQUIRE(one.has_value());
            (void)co_await io::nop();  // the waiter has had its turn
            CHECK_FALSE(drained);
            CHECK(l.connections() == 1);
            auto two = co_await b.close();
            REQUIRE(two.has_value());
        };
        co_await when_all(waiter(f.l, drained), closer(*first, *second, drained, f.l));
        CHECK(drained);
        CHECK(f.l.connections() == 0);
        CHECK(f.host.closes == 2);  // least_connections: every close is reported, and may wait
        CHECK(f.host.room_again == std::vector<bool>{false, false});

        std::stop_source stop;
        auto held = co_await connect_one(lfd);
        f.state->offer(3, dup_of(held.server));
        auto third = co_await f.l.accept();
        REQUIRE(third.has_value());
        stop.request_stop();
        const bool all = co_await f.l.drained().with_stop_token(stop.get_token());
        CHECK_FALSE(all);  // asked to stop, with a connection still open
    });
}

TEST_CASE("at max_connections a handed connection is refused, and the first close after says there is room") {
    support::with_listening(endpoint::tcp("127.0.0.1", 0), [](int lfd) -> task<void> {
        fed_listener f(schedule::round_robin, 1);
        auto a = co_await connect_one(lfd);
        auto b = co_await connect_one(lfd);
        f.state->offer(1, dup_of(a.server));
        auto taken = co_await f.l.accept();
        REQUIRE(taken.has_value());
        f.state->offer(2, dup_of(b.server));
        CHECK(f.host.acks == std::vector<std::pair<std::uint64_t, bool>>{{1, true}, {2, false}});
        CHECK(f.host.closes == 0);
        auto closed = co_await taken->close();
        REQUIRE(closed.has_value());
        CHECK(f.host.closes == 1);
        CHECK(f.host.room_again == std::vector<bool>{true});  // it goes at once: the primary may hold one for it
    });
}

TEST_CASE("close() gives back what was handed and not taken, and accept() then says listener_closed") {
    support::with_listening(endpoint::tcp("127.0.0.1", 0), [](int lfd) -> task<void> {
        fed_listener f(schedule::round_robin);
        auto clients = co_await hand_over(lfd, *f.state, 3);
        auto taken = co_await f.l.accept();
        REQUIRE(taken.has_value());
        f.l.close();
        CHECK_FALSE(f.l.is_open());
        CHECK(f.host.acks == std::vector<std::pair<std::uint64_t, bool>>{{1, true}, {2, false}, {3, false}});
        CHECK(f.host.unlistens == 1);
        auto after = co_await f.l.accept();
        REQUIRE_FALSE(after.has_value());
        CHECK(after.error() == errc::listener_closed);
        CHECK(taken->is_open());  // what was taken is the worker's to finish
    });
}

TEST_CASE("close() tells the primary under every schedule, once, so the worker may listen there again") {
    for (auto s = static_cast<std::uint8_t>(schedule::round_robin); s <= static_cast<std::uint8_t>(last_schedule);
         ++s) {
        const auto how = static_cast<schedule>(s);
        INFO(to_string(how));
        fed_listener f(how);
        f.l.close();
        f.l.close();
        CHECK(f.host.unlistens == 1);
    }
}
