// The awaitable ops one by one — read, write, readv, writev, recv, send, sendmsg/recvmsg
// with SCM_RIGHTS, accept, multishot accept, connect, poll, sleep, close, nop — and the
// errors a user meets with them: EBADF, EOF, EPIPE, ECONNREFUSED, ECANCELED, timeouts.
//
// Note for g++ 12: `if (co_await op)` with the op as a temporary crashes (a compiler bug
// with a co_await directly in an if condition); these tests always name the result.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>

#include "support/descriptors.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;

namespace {

using support::make_socketpair;

using support::make_pipe;

using support::tcp_listener;

using support::local_address;

unique_fd blocking_tcp_connect(const sockaddr_in& addr) {
    unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(c.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        throw std::system_error(errno, std::system_category(), "connect");
    return c;
}

bool cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

// This process's connected sockets whose own end is `to`: the connections accepted from it.
std::size_t accepted_from(const sockaddr_in& to) {
    std::size_t n = 0;
    for (int fd = 0; fd < 1024; ++fd) {
        int listening = 1;
        socklen_t len = sizeof listening;
        if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening) continue;
        sockaddr_in local{};
        len = sizeof local;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0) continue;
        if (local.sin_family == AF_INET && local.sin_port == to.sin_port) ++n;
    }
    return n;
}

std::string as_string(const char* p, std::size_t n) { return std::string(p, n); }

struct temp_file {
    std::string path;
    unique_fd fd;
    temp_file() {
        char name[] = "/tmp/cluster-test-ops-XXXXXX";
        fd.reset(::mkostemp(name, O_CLOEXEC));
        if (!fd) throw std::system_error(errno, std::system_category(), "mkostemp");
        path = name;
    }
    ~temp_file() { ::unlink(path.c_str()); }
};

}  // namespace

TEST_CASE("read and write on a socketpair") {
    auto sp = make_socketpair();
    auto body = [](int a, int b) -> task<std::string> {
        auto w = co_await io::write(a, std::string_view("hello, ring"));
        REQUIRE(w.has_value());
        CHECK(*w == 11);
        char buf[64];
        auto r = co_await io::read(b, buf);
        REQUIRE(r.has_value());
        co_return as_string(buf, *r);
    };
    CHECK(sync_wait(body(sp[0].get(), sp[1].get())) == "hello, ring");
}

TEST_CASE("read and write at offsets of a file") {
    temp_file f;
    auto body = [](int fd) -> task<void> {
        auto w1 = co_await io::write(fd, std::string_view("hello"), 0);
        auto w2 = co_await io::write(fd, std::string_view("world"), 100);
        REQUIRE(w1.has_value());
        REQUIRE(w2.has_value());
        CHECK(*w1 == 5);
        CHECK(*w2 == 5);
        std::array<char, 5> buf{};
        auto r = co_await io::read(fd, buf, 100);
        REQUIRE(r.has_value());
        CHECK(*r == 5);
        CHECK(std::string_view(buf.data(), 5) == "world");
        auto r0 = co_await io::read(fd, buf, 0);
        REQUIRE(r0.has_value());
        CHECK(std::string_view(buf.data(), *r0) == "hello");
        std::array<char, 10> hole{};
        auto rh = co_await io::read(fd, hole, 5);  // the gap reads as zeros
        REQUIRE(rh.has_value());
        CHECK(*rh == 10);
        CHECK(hole == std::array<char, 10>{});
        auto past = co_await io::read(fd, buf, 105);  // end of file
        REQUIRE(past.has_value());
        CHECK(*past == 0);
    };
    sync_wait(body(f.fd.get()));
    char check[5];
    REQUIRE(::pread(f.fd.get(), check, 5, 100) == 5);
    CHECK(std::string_view(check, 5) == "world");
    CHECK(::lseek(f.fd.get(), 0, SEEK_END) == 105);
}

TEST_CASE("readv and writev scatter and gather") {
    auto sp = make_socketpair();
    temp_file f;
    auto body = [](int a, int b, int file) -> task<void> {
        char h[] = "head-", m[] = "middle-", t[] = "tail";
        std::array<iovec, 3> out{{{h, 5}, {m, 7}, {t, 4}}};
        auto w = co_await io::writev(a, out);
        REQUIRE(w.has_value());
        CHECK(*w == 16);
        char x[4], y[12];
        std::array<iovec, 2> in{{{x, sizeof x}, {y, sizeof y}}};
        auto r = co_await io::readv(b, in);
        REQUIRE(r.has_value());
        CHECK(*r == 16);
        CHECK(std::string_view(x, 4) == "head");
        CHECK(std::string_view(y, 12) == "-middle-tail");

        // And with an offset into a file.
        auto wf = co_await io::writev(file, out, 10);
        REQUIRE(wf.has_value());
        CHECK(*wf == 16);
        std::array<iovec, 2> in2{{{x, sizeof x}, {y, sizeof y}}};
        auto rf = co_await io::readv(file, in2, 12);
        REQUIRE(rf.has_value());
        CHECK(*rf == 14);
        CHECK(std::string_view(x, 4) == "ad-m");
        CHECK(std::string_view(y, 10) == "iddle-tail");
    };
    sync_wait(body(sp[0].get(), sp[1].get(), f.fd.get()));
}

TEST_CASE("recv and send, with flags") {
    auto sp = make_socketpair();
    auto body = [](int a, int b) -> task<void> {
        auto s = co_await io::send(a, std::string_view("peekaboo"));
        REQUIRE(s.has_value());
        CHECK(*s == 8);
        char buf[16];
        auto peek = co_await io::recv(b, buf, MSG_PEEK);
        REQUIRE(peek.has_value());
        CHECK(std::string_view(buf, *peek) == "peekaboo");
        auto r = co_await io::recv(b, buf);
        REQUIRE(r.has_value());
        CHECK(std::string_view(buf, *r) == "peekaboo");
        // Nothing left: a non-blocking recv says so instead of waiting.
        auto empty = co_await io::recv(b, buf, MSG_DONTWAIT);
        REQUIRE_FALSE(empty.has_value());
        CHECK(empty.error() == std::errc::resource_unavailable_try_again);
    };
    sync_wait(body(sp[0].get(), sp[1].get()));
}

TEST_CASE("sendmsg and recvmsg carry a pipe's write end through SCM_RIGHTS") {
    auto sp = make_socketpair();
    auto pipe = make_pipe();
    auto body = [](int a, int b, int pipe_w, int pipe_r) -> task<void> {
        char tag[] = "fd!";
        std::array<iovec, 1> out{{{tag, 3}}};
        std::array<int, 1> fds{pipe_w};
        auto s = co_await io::sendmsg(a, out, fds);
        REQUIRE(s.has_value());
        CHECK(*s == 3);

        char got[8];
        std::array<iovec, 1> in{{{got, sizeof got}}};
        auto r = co_await io::recvmsg(b, in);
        REQUIRE(r.has_value());
        CHECK(r->bytes == 3);
        CHECK(std::string_view(got, 3) == "fd!");
        CHECK_FALSE(r->control_truncated);
        REQUIRE(r->fds.size() == 1);
        const int received = r->fds[0].get();
        CHECK(received != pipe_w);  // a new descriptor for the same pipe
        CHECK(cloexec(received));

        auto w = co_await io::write(received, std::string_view("through the passed fd"));
        REQUIRE(w.has_value());
        char buf[64];
        auto rp = co_await io::read(pipe_r, buf);
        REQUIRE(rp.has_value());
        CHECK(std::string_view(buf, *rp) == "through the passed fd");
    };
    sync_wait(body(sp[0].get(), sp[1].get(), pipe[1].get(), pipe[0].get()));
}

TEST_CASE("sendmsg and recvmsg carry several fds at once") {
    auto sp = make_socketpair();
    std::vector<std::array<unique_fd, 2>> pipes;
    for (int i = 0; i < 5; ++i) pipes.push_back(make_pipe());
    auto body = [](int a, int b, std::vector<std::array<unique_fd, 2>>& pipes) -> task<void> {
        std::vector<int> fds;
        for (auto& p : pipes) fds.push_back(p[1].get());
        char tag = 'x';
        std::array<iovec, 1> out{{{&tag, 1}}};
        auto s = co_await io::sendmsg(a, out, fds);
        REQUIRE(s.has_value());

        char got;
        std::array<iovec, 1> in{{{&got, 1}}};
        auto r = co_await io::recvmsg(b, in);
        REQUIRE(r.has_value());
        REQUIRE(r->fds.size() == pipes.size());
        for (std::size_t i = 0; i < pipes.size(); ++i) {
            CHECK(cloexec(r->fds[i].get()));
            std::string msg = "pipe " + std::to_string(i);
            auto w = co_await io::write(r->fds[i].get(), msg);
            REQUIRE(w.has_value());
            char buf[32];
            auto rp = co_await io::read(pipes[i][0].get(), buf);
            REQUIRE(rp.has_value());
            CHECK(std::string_view(buf, *rp) == msg);  // each fd arrived in order
        }
    };
    sync_wait(body(sp[0].get(), sp[1].get(), pipes));
}

TEST_CASE("accept and connect over TCP loopback on an ephemeral port") {
    auto listener = tcp_listener();
    auto addr = local_address(listener.get());
    REQUIRE(addr.sin_port != 0);
    auto body = [](int lfd, sockaddr_in to) -> task<void> {
        unique_fd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        auto accepting = [](int l) -> task<result<unique_fd>> {
            sockaddr_in peer{};
            socklen_t len = sizeof peer;
            auto r = co_await io::accept(l, reinterpret_cast<sockaddr*>(&peer), &len);
            CHECK(len == sizeof peer);
            CHECK(peer.sin_family == AF_INET);
            CHECK(peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
            co_return r;
        };
        auto connecting = [](int c, sockaddr_in a) -> task<result<void>> {
            co_return co_await io::connect(c, reinterpret_cast<const sockaddr*>(&a), sizeof a);
        };
        auto [accepted, connected] = co_await when_all(accepting(lfd), connecting(client.get(), to));
        REQUIRE(connected.has_value());
        REQUIRE(accepted.has_value());
        CHECK(cloexec(accepted->get()));
        auto w = co_await io::send(client.get(), std::string_view("over tcp"));
        REQUIRE(w.has_value());
        char buf[16];
        auto r = co_await io::recv(accepted->get(), buf);
        REQUIRE(r.has_value());
        CHECK(std::string_view(buf, *r) == "over tcp");
    };
    sync_wait(body(listener.get(), addr));
}

TEST_CASE("connect to a Unix-domain socket") {
    std::string path = "/tmp/cluster-test-ops-" + std::to_string(::getpid()) + ".sock";
    ::unlink(path.c_str());
    unique_fd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 4) == 0);
    auto body = [](int lfd, sockaddr_un to) -> task<void> {
        unique_fd client(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        auto c = co_await io::connect(client.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to);
        REQUIRE(c.has_value());
        auto a = co_await io::accept(lfd);
        REQUIRE(a.has_value());
        auto w = co_await io::write(a->get(), std::string_view("unix"));
        REQUIRE(w.has_value());
        char buf[8];
        auto r = co_await io::read(client.get(), buf);
        REQUIRE(r.has_value());
        CHECK(std::string_view(buf, *r) == "unix");
    };
    sync_wait(body(listener.get(), addr));
    ::unlink(path.c_str());
}

TEST_CASE("multishot_accept yields connections queued before next() is called") {
    auto listener = tcp_listener();
    auto addr = local_address(listener.get());
    std::vector<unique_fd> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(blocking_tcp_connect(addr));  // all in the backlog
    auto body = [](int lfd, std::vector<unique_fd>& clients, sockaddr_in to) -> task<void> {
        io::multishot_accept acceptor(lfd);
        std::vector<unique_fd> accepted;
        auto first = co_await acceptor.next();  // arms: the kernel accepts the whole backlog
        REQUIRE(first.has_value());
        accepted.push_back(std::move(*first));
        (void)co_await io::nop();  // a later completion: the others came before it
        for (int i = 1; i < 4; ++i) {
            auto next = acceptor.next();
            CHECK(next.await_ready());  // already queued, no waiting
            auto c = co_await next;
            REQUIRE(c.has_value());
            CHECK(cloexec(c->get()));
            accepted.push_back(std::move(*c));
        }
        // Still armed: a connection made now arrives through the same accept.
        clients.push_back(blocking_tcp_connect(to));
        auto late = co_await acceptor.next();
        REQUIRE(late.has_value());
        accepted.push_back(std::move(*late));

        // Every client is paired with exactly one accepted socket.
        for (std::size_t i = 0; i < clients.size(); ++i) {
            std::string tag = "client " + std::to_string(i);
            REQUIRE(::write(clients[i].get(), tag.data(), tag.size()) == static_cast<ssize_t>(tag.size()));
        }
        std::vector<std::string> got;
        for (auto& a : accepted) {
            char buf[32];
            auto r = co_await io::read(a.get(), buf);
            REQUIRE(r.has_value());
            got.emplace_back(buf, *r);
        }
        std::sort(got.begin(), got.end());
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == "client " + std::to_string(i));
    };
    sync_wait(body(listener.get(), clients, addr));
}

TEST_CASE("multishot_accept cancel() ends a waiting next() with ECANCELED") {
    auto listener = tcp_listener();
    auto addr = local_address(listener.get());
    auto body = [](int lfd, sockaddr_in to) -> task<void> {
        io::multishot_accept acceptor(lfd);
        auto waiting = [](io::multishot_accept& a) -> task<result<unique_fd>> { co_return co_await a.next(); };
        auto cancelling = [](io::multishot_accept& a) -> task<void> {
            (void)co_await io::nop();
            a.cancel();
        };
        auto [r, done] = co_await when_all(waiting(acceptor), cancelling(acceptor));
        (void)done;
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::operation_canceled);
        // Nothing is accepted behind our back any more; next() arms again.
        auto client = blocking_tcp_connect(to);
        auto again = co_await acceptor.next();
        REQUIRE(again.has_value());
    };
    sync_wait(body(listener.get(), addr));
}

// What fork() relies on: once pause() returns, every fd the kernel accepted is queued (none
// exists unseen), and none is accepted until rearm(), however many turns the loop takes.
TEST_CASE("multishot_accept pause() queues all it accepted and accepts nothing until rearm()") {
    auto listener = tcp_listener();
    auto addr = local_address(listener.get());
    auto body = [](int lfd, sockaddr_in to) -> task<void> {
        io::multishot_accept acceptor(lfd);
        std::vector<unique_fd> clients, accepted;
        auto waiting = [](io::multishot_accept& a) -> task<result<unique_fd>> { co_return co_await a.next(); };
        auto pausing = [](io::multishot_accept& a, std::vector<unique_fd>& clients, std::vector<unique_fd>& accepted,
                          sockaddr_in to) -> task<void> {
            (void)co_await io::nop();  // the waiter has armed the op
            for (int i = 0; i < 3; ++i) clients.push_back(blocking_tcp_connect(to));
            a.pause();
            const std::size_t seen = accepted_from(to);
            for (int i = 0; i < 2; ++i) clients.push_back(blocking_tcp_connect(to));
            for (int i = 0; i < 3; ++i) (void)co_await io::nop();
            CHECK(accepted_from(to) == seen);
            auto queued = a.take_queued();
            CHECK(queued.size() == seen);
            for (auto& q : queued) accepted.push_back(std::move(q));
            a.rearm();
        };
        auto [first, done] = co_await when_all(waiting(acceptor), pausing(acceptor, clients, accepted, to));
        (void)done;
        REQUIRE(first.has_value());  // after rearm(): the op accepts again
        accepted.push_back(std::move(*first));
        while (accepted.size() < clients.size()) {
            auto more = co_await acceptor.next();
            REQUIRE(more.has_value());
            accepted.push_back(std::move(*more));
        }
        CHECK(accepted_from(to) == clients.size());
    };
    sync_wait(body(listener.get(), addr));
}

TEST_CASE("poll reports readiness") {
    auto pipe = make_pipe();
    auto body = [](int r, int w) -> task<void> {
        auto writable = co_await io::poll(w, POLLOUT);
        REQUIRE(writable.has_value());
        CHECK((*writable & POLLOUT) != 0);
        auto waiter = [](int fd) -> task<result<short>> { co_return co_await io::poll(fd, POLLIN); };
        auto writer = [](int fd) -> task<void> {
            (void)co_await io::nop();
            (void)co_await io::write(fd, std::string_view("!"));
        };
        auto [readable, done] = co_await when_all(waiter(r), writer(w));
        (void)done;
        REQUIRE(readable.has_value());
        CHECK((*readable & POLLIN) != 0);
    };
    sync_wait(body(pipe[0].get(), pipe[1].get()));
}

TEST_CASE("sleep_for and sleep_until wait at least as long as asked") {
    auto body = []() -> task<void> {
        auto t0 = std::chrono::steady_clock::now();
        auto s = co_await io::sleep_for(20ms);
        auto t1 = std::chrono::steady_clock::now();
        CHECK(s.has_value());
        CHECK(t1 - t0 >= 20ms);
        CHECK(t1 - t0 < 5s);  // generous: CI machines are loaded

        auto deadline = std::chrono::steady_clock::now() + 30ms;
        auto u = co_await io::sleep_until(deadline);
        auto t2 = std::chrono::steady_clock::now();
        CHECK(u.has_value());
        CHECK(t2 >= deadline);
        CHECK(t2 - deadline < 5s);

        auto past = co_await io::sleep_until(std::chrono::steady_clock::now() - 1s);  // already due
        CHECK(past.has_value());
        auto zero = co_await io::sleep_for(0ms);
        CHECK(zero.has_value());
    };
    sync_wait(body());
}

TEST_CASE("close closes the descriptor, and an unawaited close_op still closes it") {
    auto body = []() -> task<void> {
        auto pipe = make_pipe();
        const int r = pipe[0].get();
        auto c = co_await io::close(std::move(pipe[0]));
        CHECK(c.has_value());
        CHECK_FALSE(pipe[0].valid());
        const int rc = ::fcntl(r, F_GETFD);
        const int err = errno;
        CHECK(rc == -1);
        CHECK(err == EBADF);
    };
    sync_wait(body());
    auto pipe = make_pipe();
    const int w = pipe[1].get();
    { auto op = io::close(std::move(pipe[1])); }
    CHECK(::fcntl(w, F_GETFD) == -1);
}

TEST_CASE("nop completes successfully") {
    auto body = []() -> task<int> {
        int ok = 0;
        for (int i = 0; i < 100; ++i) {
            auto r = co_await io::nop();
            ok += r.has_value();
        }
        co_return ok;
    };
    CHECK(sync_wait(body()) == 100);
}

TEST_CASE("read and write on a closed descriptor fail with EBADF") {
    io_context ctx;  // first: its ring must not take the number about to be freed
    int fd;
    {
        auto p = make_pipe();
        fd = p[0].get();
    }  // both ends closed
    REQUIRE(::fcntl(fd, F_GETFD) == -1);
    auto body = [](int bad) -> task<void> {
        char buf[4];
        auto r = co_await io::read(bad, buf);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::bad_file_descriptor);
        auto w = co_await io::write(bad, std::string_view("x"));
        REQUIRE_FALSE(w.has_value());
        CHECK(w.error() == std::errc::bad_file_descriptor);
        CHECK(w.error().category() == std::system_category());
    };
    sync_wait(body(fd));
}

TEST_CASE("read returns 0 at end of stream once the peer has closed") {
    auto sp = make_socketpair();
    auto body = [](int a, unique_fd peer) -> task<void> {
        auto w = co_await io::write(peer.get(), std::string_view("last"));
        REQUIRE(w.has_value());
        peer.reset();
        char buf[16];
        auto r = co_await io::read(a, buf);
        REQUIRE(r.has_value());
        CHECK(std::string_view(buf, *r) == "last");
        auto eof = co_await io::read(a, buf);
        REQUIRE(eof.has_value());
        CHECK(*eof == 0);
    };
    sync_wait(body(sp[0].get(), std::move(sp[1])));
}

TEST_CASE("send to a closed peer is EPIPE, not a SIGPIPE that kills the process") {
    const support::sigpipe_default guard;
    auto sp = make_socketpair();
    sp[1].reset();
    auto body = [](int a) -> task<std::error_code> {
        auto s = co_await io::send(a, std::string_view("into the void"));
        co_return s ? std::error_code{} : s.error();
    };
    CHECK(sync_wait(body(sp[0].get())) == std::errc::broken_pipe);  // and we are still alive
}

TEST_CASE("connect to a closed port is ECONNREFUSED") {
    sockaddr_in addr;
    {
        auto l = tcp_listener();
        addr = local_address(l.get());
    }  // the port is free again: nobody listens there
    auto body = [](sockaddr_in to) -> task<std::error_code> {
        unique_fd c(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        auto r = co_await io::connect(c.get(), reinterpret_cast<const sockaddr*>(&to), sizeof to);
        co_return r ? std::error_code{} : r.error();
    };
    CHECK(sync_wait(body(addr)) == std::errc::connection_refused);
}

TEST_CASE("an op whose stop token is triggered fails with ECANCELED") {
    auto sp = make_socketpair();
    auto body = [](int fd) -> task<void> {
        std::stop_source stop;
        auto reading = [](int f, std::stop_token t) -> task<result<std::size_t>> {
            char buf[8];
            co_return co_await io::read(f, buf).with_stop_token(t);
        };
        auto stopping = [](std::stop_source& s) -> task<void> {
            (void)co_await io::nop();
            s.request_stop();
        };
        auto [r, done] = co_await when_all(reading(fd, stop.get_token()), stopping(stop));
        (void)done;
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error() == std::errc::operation_canceled);
    };
    sync_wait(body(sp[0].get()));
}

TEST_CASE("an op with a timeout: timed_out if it never completes, its value if it does") {
    auto sp = make_socketpair();
    auto body = [](int a, int b) -> task<void> {
        char buf[8];
        auto t0 = std::chrono::steady_clock::now();
        auto never = co_await io::read(a, buf).with_timeout(20ms);
        auto elapsed = std::chrono::steady_clock::now() - t0;
        REQUIRE_FALSE(never.has_value());
        CHECK(never.error() == std::errc::timed_out);
        CHECK(elapsed >= 20ms);
        CHECK(elapsed < 5s);

        auto free_form = co_await io::with_timeout(io::read(a, buf), 10ms);
        REQUIRE_FALSE(free_form.has_value());
        CHECK(free_form.error() == std::errc::timed_out);

        REQUIRE(::write(b, "in time", 7) == 7);
        auto soon = co_await io::read(a, buf).with_timeout(10s);
        REQUIRE(soon.has_value());
        CHECK(std::string_view(buf, *soon) == "in time");
        // The linked timeout went with it: nothing fires later.
        auto after = co_await io::nop();
        CHECK(after.has_value());
    };
    sync_wait(body(sp[0].get(), sp[1].get()));
}
