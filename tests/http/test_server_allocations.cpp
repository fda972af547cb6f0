// What cluster::http::server allocates for a keep-alive request once its connection is warm:
// nothing, with a plain handler and with a coroutine handler. Counted by replacing the global
// operator new for this program, on the server's thread only; the client is a blocking thread.
#include <catch2/catch.hpp>

#include <cluster/http.hpp>
#include <cluster/io.hpp>
#include <cluster/net.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <stop_token>
#include <string_view>
#include <thread>

namespace {

thread_local bool counting = false;
thread_local std::size_t allocations = 0;

void* allocate(std::size_t size, std::size_t alignment) {
    if (counting) ++allocations;
    void* p = alignment <= alignof(std::max_align_t)
                  ? std::malloc(size ? size : 1)
                  : std::aligned_alloc(alignment, (size + alignment - 1) & ~(alignment - 1));
    if (!p) throw std::bad_alloc();
    return p;
}

}  // namespace

void* operator new(std::size_t size) { return allocate(size, 0); }
void* operator new[](std::size_t size) { return allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return allocate(size, static_cast<std::size_t>(a)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    if (counting) ++allocations;
    return std::malloc(size ? size : 1);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace cluster;

namespace {

constexpr int warm_up = 100;  // what a connection's buffers and the loop's queues grow to
constexpr int measured = 1000;
constexpr std::string_view get = "GET /hello HTTP/1.1\r\nHost: test\r\nUser-Agent: allocations\r\n\r\n";

// Where the client is: 0 warming up, 1 measuring, 2 done. Each handler call, on the server's
// thread, counts or not from there on: the window is whole request cycles.
std::atomic<int> phase{0};

void answer(http::response& res) {
    counting = phase == 1;
    res.send("200 OK", "text/plain", "hello");
}

struct plain_handler {
    void operator()(const http::request&, http::response& res) const { answer(res); }
};

// Suspends through the ring before it answers, as a handler that awaits anything does.
struct coroutine_handler {
    task<void> operator()(const http::request&, http::response& res) const {
        (void)co_await io::nop();
        answer(res);
    }
};

// One keep-alive connection, blocking: each request is sent once the last answer is whole.
struct client {
    int fd;

    bool one_request() {
        if (::write(fd, get.data(), get.size()) != static_cast<ssize_t>(get.size())) return false;
        char buf[512];
        std::size_t got = 0;
        while (got < 4 || std::string_view(buf, got).find("\r\n\r\nhello") == std::string_view::npos) {
            const auto n = ::read(fd, buf + got, sizeof buf - got);
            if (n <= 0) return false;
            got += static_cast<std::size_t>(n);
        }
        return true;
    }
};

// Serves one connection and returns what the server allocated per request while the client
// ran `measured` requests, after warm_up of them; one more request after those ends the count.
template <class Handler>
double allocations_per_request() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    phase = 0;
    allocations = 0;
    bool client_ok = false;
    std::thread remote([&] {
        client c{fds[1]};
        client_ok = [&] {
            for (int i = 0; i < warm_up; ++i)
                if (!c.one_request()) return false;
            phase = 1;
            for (int i = 0; i < measured; ++i)
                if (!c.one_request()) return false;
            phase = 2;
            return c.one_request();
        }();
        ::shutdown(fds[1], SHUT_WR);
    });
    Handler handler;
    sync_wait([&]() -> task<void> {
        std::stop_source drain;
        http::server<Handler> server(handler, drain.get_token());
        server.serve(net::tcp_stream(unique_fd(fds[0])));
        co_await server.join();
    }());
    counting = false;
    remote.join();
    ::close(fds[1]);
    REQUIRE(client_ok);
    return static_cast<double>(allocations) / measured;
}

}  // namespace

TEST_CASE("server allocations: a keep-alive request on a warm connection allocates nothing, its handler plain") {
    CHECK(allocations_per_request<plain_handler>() == 0);
}

TEST_CASE("server allocations: a keep-alive request on a warm connection allocates nothing, its handler a coroutine") {
    // Under AddressSanitizer each frame goes to the heap and back, for it to see a use after free.
    const double frames = io::detail::recycle_frames ? 0 : 1;
    CHECK(allocations_per_request<coroutine_handler>() == frames);
}
