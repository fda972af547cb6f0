// cluster::websocket::socket and group over a loopback pair, a minimal client on the other
// end: a message each way, a group's close_all (1012) answered, a send past the queue's
// bound refused, closing with 1008, and sends in order across a full kernel buffer.
//
// Note for g++ 12: results of co_await are always named before they are tested.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/net.hpp>
#include <cluster/websocket.hpp>

#include "support/loopback.hpp"

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

using namespace cluster;
using namespace std::chrono_literals;

namespace {

// A client's frame: final, masked (as a client's must be), a payload under 126 bytes.
std::string client_frame(std::uint8_t opcode, std::string_view payload) {
    const std::array<char, 4> mask{0x11, 0x22, 0x33, 0x44};
    std::string f;
    f.push_back(static_cast<char>(0x80 | opcode));
    f.push_back(static_cast<char>(0x80 | payload.size()));
    f.append(mask.data(), mask.size());
    for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    return f;
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
    std::string p{static_cast<char>(code >> 8), static_cast<char>(code & 0xff)};
    return p.append(reason);
}

struct frame {
    std::uint8_t opcode = 0;
    std::string payload;
};

// One server frame (unmasked, a payload under 126 bytes, as every one here is).
task<frame> read_frame(tcp_stream& s) {
    std::array<char, 2> head;
    auto got = co_await s.read(std::span(head));
    REQUIRE(got.has_value());
    const auto size = static_cast<std::size_t>(head[1] & 0x7f);
    REQUIRE(size < 126);
    std::string payload(size, '\0');
    auto body = co_await s.read(std::span(payload));
    REQUIRE(body.has_value());
    frame f{static_cast<std::uint8_t>(head[0] & 0x0f), std::move(payload)};
    co_return f;
}

void with_websocket(websocket::options o, websocket::group* g,
                    task<void> (*body)(websocket::socket&, tcp_stream&, websocket::group*)) {
    support::with_connected_pair(endpoint::tcp("127.0.0.1", 0), [&](support::stream_pair& pair, int) -> task<void> {
        websocket::socket ws(std::move(pair.server), {}, o, g);
        co_await body(ws, pair.client, g);
    });
}

}  // namespace

TEST_CASE("socket: a text message each way, and the bytes read with the handshake come first") {
    support::with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](support::stream_pair& pair, int) -> task<void> {
        const std::string early = client_frame(0x1, "early");
        websocket::socket ws(std::move(pair.server), early, {});
        auto first = co_await ws.receive();
        CHECK(first.kind == websocket::kind::text);
        CHECK(first.data == "early");
        auto sent = co_await pair.client.write(client_frame(0x2, "bin"));
        REQUIRE(sent.has_value());
        auto second = co_await ws.receive();
        CHECK(second.kind == websocket::kind::binary);
        CHECK(second.data == "bin");
        auto queued = co_await ws.send_text("back");
        CHECK(queued.has_value());
        auto f = co_await read_frame(pair.client);
        CHECK(f.opcode == 0x1);
        CHECK(f.payload == "back");
    });
}

TEST_CASE("group: close_all sends every socket's peer a close frame with its code, and the answer ends receive()") {
    websocket::group g;
    with_websocket({}, &g, [](websocket::socket& ws, tcp_stream& client, websocket::group* group) -> task<void> {
        CHECK(group->size() == 1);
        group->close_all(websocket::close_code::service_restart, "restart");
        auto f = co_await read_frame(client);
        CHECK(f.opcode == 0x8);
        CHECK(f.payload == close_payload(1012, "restart"));
        auto sent = co_await client.write(client_frame(0x8, close_payload(1012, "")));
        REQUIRE(sent.has_value());
        auto m = co_await ws.receive();
        CHECK(m.kind == websocket::kind::close);
        CHECK(m.code == websocket::close_code::service_restart);
        CHECK(m.data == "restart");
        auto after = co_await ws.send_text("late");
        CHECK(after.error() == std::errc::not_connected);
    });
}

TEST_CASE("socket: a send past max_send_queue_bytes is refused, and the reader too slow is closed with 1008") {
    websocket::options o;
    o.max_send_queue_bytes = 1000;
    with_websocket(o, nullptr, [](websocket::socket& ws, tcp_stream& client, websocket::group*) -> task<void> {
        auto over = co_await ws.send_text(std::string(1001, 'x'));
        CHECK(over.error() == std::errc::no_buffer_space);
        auto f = co_await read_frame(client);
        CHECK(f.opcode == 0x8);
        CHECK(f.payload.substr(0, 2) == close_payload(1008, ""));
        auto sent = co_await client.write(client_frame(0x8, close_payload(1008, "")));
        REQUIRE(sent.has_value());
        auto m = co_await ws.receive();
        CHECK(m.code == websocket::close_code::policy_violation);
    });
}

TEST_CASE("socket: sends leave in order, straight to the kernel while it has room and through the writer once full") {
    support::with_connected_pair(endpoint::tcp("127.0.0.1", 0), [](support::stream_pair& pair, int) -> task<void> {
        const int small = 4096;  // the kernel's floor: a few frames fill both ends' buffers
        REQUIRE(::setsockopt(pair.server.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small) == 0);
        REQUIRE(::setsockopt(pair.client.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
        websocket::socket ws(std::move(pair.server), {}, {});
        constexpr int count = 2000;  // 200 KB, far past both buffers
        const auto text = [](int i) {
            std::string t = std::to_string(i);
            t.resize(100, '.');
            return t;
        };
        for (int i = 0; i < count; ++i) {
            auto queued = co_await ws.send_text(text(i));
            REQUIRE(queued.has_value());
        }
        CHECK(ws.queued_bytes() > 0);
        for (int i = 0; i < count; ++i) {
            auto f = co_await read_frame(pair.client);
            REQUIRE(f.opcode == 0x1);
            REQUIRE(f.payload == text(i));
        }
        auto last = co_await ws.send_text("after");
        REQUIRE(last.has_value());
        auto f = co_await read_frame(pair.client);
        CHECK(f.payload == "after");
    });
}
