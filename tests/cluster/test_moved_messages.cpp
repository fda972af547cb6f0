// Messages given away (an rvalue, or hand_over()) against messages sent by reference: to a thread
// the given one travels as itself, its fd the same descriptor, and the sender's is left empty;
// to a process it is encoded and the sender's fds closed; one dropped unread closes its fds.
#include <catch2/catch.hpp>

#include "support/descriptors.hpp"
#include "support/messages.hpp"
#include "support/primary.hpp"
#include "support/waiting.hpp"

#include <cluster/cluster.hpp>
#include <cluster/io/transfer.hpp>

#include <boost/describe.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

using namespace cluster;
using namespace std::chrono_literals;

namespace moved_test {

// An fd in a type with a constructor, which no compiler refuses to take as std::move(x).
struct sealed_fd {
    sealed_fd() = default;
    explicit sealed_fd(unique_fd f) noexcept : fd(std::move(f)) {}
    unique_fd fd;
};
BOOST_DESCRIBE_STRUCT(sealed_fd, (), (fd))

// A worker's report: the descriptor number it got, or still held after sending (-1: none).
struct fd_report {
    std::int32_t number = -1;
    std::string label;
};
BOOST_DESCRIBE_STRUCT(fd_report, (), (number, label))

// Asks a worker to give away an fd of its own: to the primary (worker 0) or to that worker.
struct give_fd {
    std::uint32_t to = 0;
};
BOOST_DESCRIBE_STRUCT(give_fd, (), (to))

using support::pipe_end;
using fd_proto = protocol<pipe_end, sealed_fd, fd_report, give_fd, support::tick>;

void must(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(what);
}

// Labels are views of what outlives the wait (a literal, the message received): no temporary
// std::string sits in a co_await.
task<void> report_fd(worker<fd_proto>& w, int number, std::string_view label) {
    const fd_report r{number, std::string(label)};
    auto sent = co_await w.send(r);
    must(sent.has_value(), "sending a report");
}

// What arrives through an fd it was handed: a byte written to it, and the number it had here.
task<void> mark_and_report(worker<fd_proto>& w, const unique_fd& fd, std::string_view label) {
    must(fd.valid() && ::write(fd.get(), "w", 1) == 1, "writing through a handed fd");
    co_await report_fd(w, fd.get(), label);
}

// A memfd, given away to the primary or to another worker, its number in its label; then
// what the worker's own message holds after the send.
task<void> give_own_fd(worker<fd_proto>& w, std::uint32_t to) {
    pipe_end mine{"", unique_fd(::memfd_create("given", MFD_CLOEXEC))};
    mine.label = std::to_string(mine.fd.get());
    if (to == 0) {
        auto sent = co_await w.send(hand_over(mine));
        must(sent.has_value(), "giving an fd away");
    } else {
        auto sent = co_await w.send_to(to, hand_over(mine));
        must(sent.has_value(), "giving an fd away");
    }
    co_await report_fd(w, mine.fd.get(), "after giving");
}

// Writes through each fd it is handed and reports it; gives its own away when asked.
task<void> fd_taking_worker(worker<fd_proto>& w) {
    while (auto m = co_await w.receive()) {
        if (auto* p = m->get_if<pipe_end>())
            co_await mark_and_report(w, p->fd, p->label);
        else if (auto* s = m->get_if<sealed_fd>())
            co_await mark_and_report(w, s->fd, "sealed");
        else if (auto* g = m->get_if<give_fd>())
            co_await give_own_fd(w, g->to);
    }
}

// Reads nothing but ticks, which never come: whatever else it is sent stays unread until it goes.
task<void> deaf_worker(worker<fd_proto>& w) {
    while (auto t = co_await w.receive<support::tick>()) (void)t;
}

task<std::string> drain(int fd) {
    std::string out;
    char buf[64];
    for (;;) {
        auto n = co_await io::read(fd, std::span(buf));
        if (!n || *n == 0) co_return out;
        out.append(buf, *n);
    }
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

template <class Body>
void with_fd_primary(start_mode mode, worker<fd_proto>::main_function main, Body body) {
    primary_options o;
    o.mode = mode;
    o.restart.mode = restart_mode::temporary;
    support::with_primary<fd_proto>(std::move(o), std::move(main), std::move(body));
}

start_mode process_or_thread() {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    return mode;
}

// A pipe's write end given away, by hand_over() and by std::move: the worker writes through the
// only write end there is, and the pipe ends when it drops it.
task<void> give_to_worker(primary<fd_proto>& p, bool thread) {
    auto& h = co_await support::fork_worker(p);
    auto ends = support::make_pipe();
    pipe_end given{"given", std::move(ends[1])};
    const int number = given.fd.get();
    auto sent = co_await h.send(hand_over(given));
    REQUIRE(sent.has_value());
    CHECK_FALSE(given.fd.valid());
    auto got = co_await support::bounded(p.next_message<fd_report>(), "the worker's report");
    CHECK(got.value.label == "given");
    if (thread) CHECK(got.value.number == number);
    auto text = co_await support::bounded(drain(ends[0].get()), "the pipe's end");
    CHECK(text == "w");

    auto more = support::make_pipe();
    sealed_fd sealed(std::move(more[1]));
    const int sealed_number = sealed.fd.get();
    auto moved = co_await h.send(std::move(sealed));
    REQUIRE(moved.has_value());
    CHECK_FALSE(sealed.fd.valid());  // NOLINT(bugprone-use-after-move)
    auto report = co_await support::bounded(p.next_message<fd_report>(), "the worker's second report");
    if (thread) CHECK(report.value.number == sealed_number);
    auto rest = co_await support::bounded(drain(more[0].get()), "the second pipe's end");
    CHECK(rest == "w");
}

// Sent by reference: the worker gets a descriptor of its own, and the sender's stays open.
task<void> lend_to_worker(primary<fd_proto>& p) {
    auto& h = co_await support::fork_worker(p);
    auto ends = support::make_pipe();
    pipe_end lent{"lent", std::move(ends[1])};
    const int number = lent.fd.get();
    auto sent = co_await h.send(lent);
    REQUIRE(sent.has_value());
    auto got = co_await support::bounded(p.next_message<fd_report>(), "the worker's report");
    CHECK(got.value.number != number);
    REQUIRE(lent.fd.get() == number);
    CHECK(is_open(number));
    lent.fd.reset();  // the worker's copy is closed already: the pipe ends with ours
    auto text = co_await support::bounded(drain(ends[0].get()), "the pipe's end");
    CHECK(text == "w");
}

// A worker's memfd given away to the primary: the same number off a thread; the worker's
// message holds none after the send.
task<void> take_from_worker(primary<fd_proto>& p, bool thread) {
    auto& h = co_await support::fork_worker(p);
    const give_fd ask{0};
    auto asked = co_await h.send(ask);
    REQUIRE(asked.has_value());
    auto got = co_await support::bounded(p.next_message<pipe_end>(), "the worker's fd");
    REQUIRE(got.value.fd.valid());
    if (thread) CHECK(std::to_string(got.value.fd.get()) == got.value.label);
    auto after = co_await support::bounded(p.next_message<fd_report>(), "what the worker kept");
    CHECK(after.value.label == "after giving");
    CHECK(after.value.number == -1);
}

// send_to with a message given away: between threads, the receiver's fd is the sender's own.
task<void> give_between_workers(primary<fd_proto>& p, bool thread) {
    auto& giver = co_await support::fork_worker(p);
    auto& taker = co_await support::fork_worker(p);
    const give_fd ask{taker.id()};
    auto asked = co_await giver.send(ask);
    REQUIRE(asked.has_value());
    int given = -2;
    int taken = -2;
    std::string label;
    for (int i = 0; i < 2; ++i) {
        auto r = co_await support::bounded(p.next_message<fd_report>(), "the workers' reports");
        if (r.from == giver.id()) {
            given = r.value.number;
        } else {
            taken = r.value.number;
            label = r.value.label;
        }
    }
    CHECK(given == -1);
    REQUIRE(taken >= 0);
    if (thread) CHECK(std::to_string(taken) == label);
}

// A message given away to a worker that never reads it: its fd closes with the worker's end.
task<void> give_to_deaf_worker(primary<fd_proto>& p) {
    auto& h = co_await support::fork_worker(p);
    auto ends = support::make_pipe();
    pipe_end unread{"unread", std::move(ends[1])};
    auto sent = co_await h.send(hand_over(unread));
    REQUIRE(sent.has_value());
    auto left = co_await support::bounded(h.disconnect(), "the worker's disconnect");
    CHECK(left.has_value());
    auto text = co_await support::bounded(drain(ends[0].get()), "the unread pipe's end");
    CHECK(text.empty());
}

}  // namespace moved_test

TEST_CASE("a message given away reaches a worker whole, as the same fd in a thread, and leaves the sender's empty") {
    const start_mode mode = moved_test::process_or_thread();
    INFO(to_string(mode));
    const bool thread = mode == start_mode::thread;
    moved_test::with_fd_primary(mode, moved_test::fd_taking_worker, [thread](primary<moved_test::fd_proto>& p) {
        return moved_test::give_to_worker(p, thread);
    });
}

TEST_CASE("a message sent by reference reaches a thread worker as a dup, and the sender keeps its fd") {
    moved_test::with_fd_primary(start_mode::thread, moved_test::fd_taking_worker, moved_test::lend_to_worker);
}

TEST_CASE("a worker's message given away reaches the primary, as the same fd from a thread") {
    const start_mode mode = moved_test::process_or_thread();
    INFO(to_string(mode));
    const bool thread = mode == start_mode::thread;
    moved_test::with_fd_primary(mode, moved_test::fd_taking_worker, [thread](primary<moved_test::fd_proto>& p) {
        return moved_test::take_from_worker(p, thread);
    });
}

TEST_CASE("send_to of a message given away reaches the other worker, as the same fd between threads") {
    const start_mode mode = moved_test::process_or_thread();
    INFO(to_string(mode));
    const bool thread = mode == start_mode::thread;
    moved_test::with_fd_primary(mode, moved_test::fd_taking_worker, [thread](primary<moved_test::fd_proto>& p) {
        return moved_test::give_between_workers(p, thread);
    });
}

TEST_CASE("a message given away and never read closes its fd once the worker has gone") {
    const start_mode mode = moved_test::process_or_thread();
    INFO(to_string(mode));
    moved_test::with_fd_primary(mode, moved_test::deaf_worker, moved_test::give_to_deaf_worker);
}
