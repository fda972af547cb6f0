// Messages between a primary and its workers, forked or threads: order and content both ways,
// requests both ways, routing between workers, fds; and, for processes, workers that break the
// protocol or die mid-frame, and a worker's forked child, which is not that worker.
#include <catch2/catch.hpp>

#include "support/descriptors.hpp"
#include "support/events.hpp"
#include "support/messages.hpp"
#include "support/primary.hpp"
#include "support/waiting.hpp"

#include <cluster/cluster.hpp>
#include <cluster/io/transfer.hpp>

#include <boost/describe.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;

namespace msg_test {

// A worker got a note from another worker: which one it was, and what it said.
struct seen {
    std::uint32_t by = 0;
    std::uint32_t from = 0;
    std::string text;
};
BOOST_DESCRIBE_STRUCT(seen, (), (by, from, text))

// Bytes for a worker to write straight to its socket, as a peer built from other code might.
struct raw_bytes {
    std::vector<std::uint8_t> bytes;
    bool then_exit = false;
};
BOOST_DESCRIBE_STRUCT(raw_bytes, (), (bytes, then_exit))

}  // namespace msg_test

using namespace msg_test;
using support::answer;
using support::job;
using support::note;
using support::pipe_end;
using support::tick;
using P = protocol<job, answer, tick, note, seen, pipe_end, raw_bytes>;
using msg_handle = worker_handle<P>;

namespace {

using support::open_fd_count;

// The mode the running case starts its workers in: a "die" there is a SIGKILL for a process and
// an exception (a crash) for a thread, which no signal can end alone.
start_mode mode_under_test = start_mode::fork;

using support::bounded;
using support::exit_of;
constexpr auto patience = support::wait_limit;
constexpr std::size_t in_flight = 1000;

template <class T>
task<std::vector<incoming<T>>> take_messages(primary<P>& p, std::size_t n) {
    std::vector<incoming<T>> out;
    while (out.size() < n) out.push_back(co_await p.template next_message<T>());
    co_return out;
}

using event_log = std::map<unsigned, std::vector<event<P>>>;

// Everything the primary reports until each worker in ids has exited, by worker.
task<event_log> events_until_exit(primary<P>& p, std::set<unsigned> ids) {
    event_log log;
    while (!ids.empty()) {
        auto e = co_await p.next_event();
        if (e.is<exit_event>()) ids.erase(e.worker_id());
        log[e.worker_id()].push_back(std::move(e));
    }
    co_return log;
}

// A worker's events as words, a run of messages counted: "fork online 3000 messages exit".
std::string story(const std::vector<event<P>>& events) {
    std::string out;
    std::size_t messages = 0;
    for (const auto& e : events) {
        if (e.kind() == event_kind::message) {
            ++messages;
            continue;
        }
        if (messages) out += std::to_string(std::exchange(messages, 0)) + " messages ";
        out += support::kind_name(e.kind()) + std::string(" ");
    }
    if (messages) out += std::to_string(messages) + " messages ";
    if (!out.empty()) out.pop_back();
    return out;
}

// Disconnects every worker and returns what came until each has exited.
task<event_log> finish(primary<P>& p, std::set<unsigned> ids) {
    co_await bounded(p.disconnect_all(), "every worker to exit");
    co_return co_await bounded(events_until_exit(p, std::move(ids)), "the exit events");
}

template <class Proto, class T>
std::vector<std::uint8_t> frame_of(const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0) {
    wire::buffer out;
    (void)wire::encode_frame<Proto>(out, msg, tag, flags);
    const auto* first = reinterpret_cast<const std::uint8_t*>(out.bytes().data());
    return {first, first + out.size()};
}

// ---- worker side ----

// In a worker, a broken expectation ends the process with code 1, saying why on stderr.
void expect(bool ok, const std::string& what) {
    if (!ok) throw std::runtime_error(what);
}

// Answers each job with its length and each tick with a note, in the order they came.
task<void> echo_worker(worker<P>& w) {
    while (auto m = co_await w.receive()) {
        if (auto* j = m->get_if<job>()) {
            const answer a{j->id, j->text.size()};
            (void)co_await w.send(a);
        } else if (auto* t = m->get_if<tick>()) {
            const note n{w.id(), "tick " + std::to_string(t->seq)};
            (void)co_await w.send(n);
        }
    }
}

constexpr std::uint64_t picked = 100;

// Takes the ticks first, with receive<tick>(), then whatever else came, and echoes each.
task<void> picky_worker(worker<P>& w) {
    for (std::uint64_t i = 0; i < picked; ++i) {
        auto t = co_await w.receive<tick>();
        expect(t && t->value.seq == i && t->from == from_primary, "tick " + std::to_string(i) + " in order");
        const note n{w.id(), "tick " + std::to_string(t->value.seq)};
        (void)co_await w.send(n);
    }
    co_await echo_worker(w);
}

// Replies to the batch of jobs it held, last asked first answered.
task<void> answer_in_reverse(worker<P>& w, std::vector<incoming<P>>& held) {
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
        const answer a{it->get<job>().id, it->get<job>().text.size()};
        (void)co_await w.reply(*it, a);
    }
    held.clear();
}

// Answers requests: a job with its length, a tick with a note (the wrong type). Jobs
// marked "batch" are held until in_flight have come; one marked "hold" until a note
// says "release"; one marked "die" kills the worker.
task<void> answering_worker(worker<P>& w) {
    std::vector<incoming<P>> batch;
    std::optional<incoming<P>> held;
    while (auto m = co_await w.receive()) {
        if (auto* n = m->get_if<note>(); n && n->text == "release" && held) {
            const answer late{held->get<job>().id, 0};
            (void)co_await w.reply(*held, late);
            held.reset();
        } else if (m->is<tick>() && m->is_request()) {
            const note wrong{w.id(), "a note, not an answer"};
            (void)co_await w.reply(*m, wrong);
        } else if (m->is<job>() && m->is_request()) {
            const auto& j = m->get<job>();
            if (j.text == "die") {
                if (mode_under_test == start_mode::thread) throw std::runtime_error("told to die");
                ::kill(::getpid(), SIGKILL);
            } else if (j.text == "hold") {
                held = std::move(*m);
            } else if (j.text == "batch") {
                batch.push_back(std::move(*m));
                if (batch.size() == in_flight) co_await answer_in_reverse(w, batch);
            } else {
                const answer a{j.id, j.text.size()};
                (void)co_await w.reply(*m, a);
            }
        }
    }
}

task<void> tell(worker<P>& w, std::string text) {
    const note n{w.id(), std::move(text)};
    (void)co_await w.send(n);
}

std::string outcome_text(const result<answer>& r) {
    return r ? "answer " + std::to_string(r->id) + " of length " + std::to_string(r->count) : r.error().message();
}

// Asks the primary: in_flight jobs at once, a tick (answered with the wrong type), a job
// it gives up on after 50 ms, one more job, and a last one answered by a disconnect.
// Each outcome goes to the primary as a note; the last decides the exit code.
task<void> asking_worker(worker<P>& w) {
    std::vector<job> jobs;
    for (std::uint64_t i = 0; i < in_flight; ++i) jobs.push_back(job{i, std::string(i % 7, 'q')});
    std::vector<task<result<answer>>> asks;
    for (const auto& j : jobs) asks.push_back(w.request<answer>(j, patience));
    auto answers = co_await when_all(std::move(asks));
    std::size_t right = 0;
    for (std::size_t i = 0; i < in_flight; ++i)
        right += answers[i] && answers[i]->id == i && answers[i]->count == i % 7;
    co_await tell(w, std::to_string(right) + " right");

    const tick t{1};
    auto wrong = co_await w.request<answer>(t, patience);
    co_await tell(w, outcome_text(wrong));

    const job slow{2, "slow"};
    auto timed = co_await w.request<answer>(slow, 50ms);
    co_await tell(w, outcome_text(timed));
    const job next{3, "next"};
    auto after = co_await w.request<answer>(next, patience);
    co_await tell(w, outcome_text(after));

    const job last{4, "leave"};
    auto gone = co_await w.request<answer>(last, patience);
    expect(!gone && gone.error() == errc::peer_gone, "the last request ends in peer_gone, not " + outcome_text(gone));
    expect(w.stopping(), "a disconnected worker is stopping");
}

void write_fully(int fd, const std::vector<std::uint8_t>& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        expect(n > 0, "writing raw bytes");
        done += static_cast<std::size_t>(n);
    }
}

// Passes a note on when the primary asks (a job "send_to" naming the worker in its id, or
// "broadcast"), and reports each note it gets as seen; writes raw_bytes to its socket.
task<void> routing_worker(worker<P>& w) {
    while (auto m = co_await w.receive()) {
        if (auto* r = m->get_if<raw_bytes>()) {
            write_fully(w.native_handle(), r->bytes);
        } else if (auto* j = m->get_if<job>()) {
            const note n{w.id(), j->text + " from " + std::to_string(w.id())};
            if (j->text == "send_to")
                (void)co_await w.send_to(static_cast<unsigned>(j->id), n);
            else
                (void)co_await w.broadcast(n);
        } else if (auto* n = m->get_if<note>()) {
            const seen s{w.id(), m->from, n->text};
            (void)co_await w.send(s);
        }
    }
}

// Worker 1, given the primary's job "burst" (its id a count of rounds), sends that many rounds of
// a tick to worker 2, a tick to every other worker, a tick to worker 3 and one to the primary, as
// fast as they queue: they reach the primary many to a read. Workers 2 and 3 each get two streams
// of ticks, the ones sent to them (even) and the broadcasts (odd), which each must keep; and, as
// both go through the primary between processes, one run of consecutive ticks (2 from 0, 3 from
// 1). Once it has them all, each says so (a seen's text).
task<void> burst_worker(worker<P>& w) {
    std::uint64_t expected = 0, got = 0, next = w.id() == 2 ? 0 : 1;
    std::array<std::uint64_t, 2> next_of_stream{w.id() == 2 ? 0u : 2u, 1};
    bool interleaved = true;
    std::optional<std::uint64_t> out_of_order;
    while (auto m = co_await w.receive()) {
        if (auto* j = m->get_if<job>()) {
            expected = 2 * j->id;
            for (std::uint64_t i = 0; w.id() == 1 && i < j->id; ++i) {
                const tick to_2{2 * i}, to_all{2 * i + 1}, to_3{2 * i + 2}, to_primary{i};
                (void)co_await w.send_to(2, to_2);
                (void)co_await w.broadcast(to_all);
                (void)co_await w.send_to(3, to_3);
                (void)co_await w.send(to_primary);
            }
        } else if (auto* t = m->get_if<tick>()) {
            interleaved = interleaved && t->seq == next++;
            auto& stream = next_of_stream[t->seq % 2];
            if (t->seq != stream && !out_of_order) out_of_order = t->seq;
            stream = t->seq + 2;
            if (++got == expected) {
                const seen s{w.id(), 1,
                             out_of_order  ? "out of order at tick " + std::to_string(*out_of_order)
                             : interleaved ? "each stream in order, interleaved as sent"
                                           : "each stream in order"};
                (void)co_await w.send(s);
            }
        }
    }
}

task<std::string> read_to_end(int fd) {
    std::string out;
    char buf[256];
    for (;;) {
        auto n = co_await io::read(fd, std::span(buf));
        if (!n || *n == 0) co_return out;
        out.append(buf, *n);
    }
}

// Hands the primary a pipe's write end and reports what came through it; then writes
// through the write end the primary hands back.
task<void> fd_worker(worker<P>& w) {
    auto ends = support::make_pipe();
    {
        const pipe_end mine{"to the primary", std::move(ends[1])};
        auto sent = co_await w.send(mine);
        expect(bool(sent), "sending a pipe end");
    }  // ours closes: the primary's copy is the only write end left
    auto heard = co_await read_to_end(ends[0].get());
    co_await tell(w, heard);
    auto theirs = co_await w.receive<pipe_end>();
    expect(theirs && theirs->value.fd.valid(), "a pipe end from the primary");
    const std::string text = "through " + theirs->value.label + " from worker " + std::to_string(w.id());
    expect(::write(theirs->value.fd.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()),
           "writing through the primary's pipe");
}

// Echoes tick requests, and writes raw_bytes straight to its socket, then exits at once
// if told to, or carries on until the primary cuts it off.
task<void> raw_worker(worker<P>& w) {
    while (auto m = co_await w.receive()) {
        if (auto* r = m->get_if<raw_bytes>()) {
            write_fully(w.native_handle(), r->bytes);
            if (r->then_exit) ::_exit(0);
        } else if (m->is<tick>() && m->is_request()) {
            (void)co_await w.reply(*m, m->get<tick>());
        }
    }
}

constexpr std::uint64_t chatter = 3000;

task<void> chatty_worker(worker<P>& w) {
    for (std::uint64_t i = 0; i < chatter; ++i) {
        const tick t{i};
        (void)co_await w.send(t);
    }
}

// ---- primary side ----

constexpr std::uint64_t pairs = 5000;  // a job and a tick each: 10,000 messages each way

std::string filler(std::uint64_t i) { return std::string(i % 50, static_cast<char>('a' + i % 26)); }

// Jobs and ticks numbered 0 to n - 1, a job then a tick.
task<void> send_pairs(msg_handle& h, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
        const job j{i, filler(i)};
        auto sent = co_await h.send(j);
        REQUIRE(sent.has_value());
        const tick t{i};
        sent = co_await h.send(t);
        REQUIRE(sent.has_value());
    }
}

task<void> check_echoes(primary<P>& p, unsigned from) {
    for (std::uint64_t i = 0; i < pairs; ++i) {
        auto m = co_await p.next<incoming<P>>();
        REQUIRE(m.from == from);
        REQUIRE_FALSE(m.is_request());
        const auto* a = m.get_if<answer>();
        REQUIRE(a);
        REQUIRE(a->id == i);
        REQUIRE(a->count == i % 50);
        m = co_await p.next<incoming<P>>();
        const auto* n = m.get_if<note>();
        REQUIRE(n);
        REQUIRE(n->text == "tick " + std::to_string(i));
    }
}

task<void> both_ways_in_order(primary<P>& p) {
    auto& h = co_await support::fork_worker(p);
    co_await bounded(send_pairs(h, pairs), "sending 10,000 messages");
    co_await bounded(check_echoes(p, h.id()), "10,000 replies");
    const std::set<unsigned> ids{h.id()};
    auto log = co_await finish(p, ids);
    CHECK(story(log[1]) == "fork online disconnect exit");
    CHECK(exit_of(log[1]).status.success());
}

task<void> picking_by_type(primary<P>& p) {
    auto& h = co_await support::fork_worker(p);
    co_await bounded(send_pairs(h, picked), "sending");
    // The notes come first (the worker took the ticks first): skipped here, still queued.
    auto answers = co_await bounded(take_messages<answer>(p, picked), "the answers");
    for (std::uint64_t i = 0; i < picked; ++i) {
        REQUIRE(answers[i].value.id == i);
        REQUIRE(answers[i].value.count == i % 50);
        REQUIRE(answers[i].from == h.id());
    }
    auto notes = co_await bounded(take_messages<note>(p, picked), "the notes");
    for (std::uint64_t i = 0; i < picked; ++i) REQUIRE(notes[i].value.text == "tick " + std::to_string(i));
    const std::set<unsigned> ids{h.id()};
    auto log = co_await finish(p, ids);
    CHECK(story(log[1]) == "fork online disconnect exit");  // every message was taken, none twice
    CHECK(exit_of(log[1]).status.success());
}

task<void> primary_asks(primary<P>& p) {
    auto& h = co_await support::fork_worker(p);

    std::vector<job> jobs;
    for (std::uint64_t i = 0; i < in_flight; ++i) jobs.push_back(job{i, "batch"});
    std::vector<task<result<answer>>> asks;
    for (const auto& j : jobs) asks.push_back(h.request<answer>(j, patience));
    auto answers = co_await when_all(std::move(asks));
    for (std::uint64_t i = 0; i < in_flight; ++i) {
        REQUIRE(answers[i].has_value());
        REQUIRE(answers[i]->id == i);
    }

    const tick t{1};
    auto wrong = co_await h.request<answer>(t, patience);
    CHECK(wrong.error() == errc::unexpected_type);

    const job hold{2, "hold"};
    auto timed = co_await h.request<answer>(hold, 50ms);
    CHECK(timed.error() == std::errc::timed_out);
    const note release{0, "release"};
    (void)co_await h.send(release);  // the late answer comes back, and is dropped
    const job next{3, "next"};
    auto after = co_await h.request<answer>(next, patience);
    REQUIRE(after.has_value());
    CHECK(after->id == 3);
    CHECK(after->count == 4);

    const job die{4, "die"};
    const auto asked = std::chrono::steady_clock::now();
    auto gone = co_await h.request<answer>(die, patience);
    CHECK(gone.error() == errc::peer_gone);
    CHECK(std::chrono::steady_clock::now() - asked < patience / 2);
    auto again = co_await h.request<answer>(next, patience);
    CHECK(again.error() == errc::peer_gone);

    const std::set<unsigned> ids{h.id()};
    auto log = co_await bounded(events_until_exit(p, ids), "the exit event");
    CHECK(story(log[1]) == "fork online disconnect exit");  // the late answer made no event
    if (mode_under_test == start_mode::thread) {
        CHECK(exit_of(log[1]).status.code == 1);
        CHECK(exit_of(log[1]).failure == "told to die");
    } else {
        CHECK(exit_of(log[1]).status.signal == SIGKILL);
    }
}

task<void> reply_to_all(primary<P>& p, msg_handle& h, std::vector<incoming<job>>& asked) {
    for (std::size_t k = asked.size(); k-- > 0;) {
        const auto& q = asked[k];
        REQUIRE(q.is_request());
        REQUIRE(q.from == h.id());
        const answer a{q.value.id, q.value.text.size()};
        if (k % 2) {
            auto sent = co_await p.reply(q, a);
            REQUIRE(sent.has_value());
        } else {
            auto sent = co_await h.reply(q, a);
            REQUIRE(sent.has_value());
        }
    }
}

task<void> worker_asks(primary<P>& p) {
    auto& h = co_await support::fork_worker(p);
    auto asked = co_await bounded(take_messages<job>(p, in_flight), "the worker's requests");
    co_await bounded(reply_to_all(p, h, asked), "replying");
    auto report = co_await bounded(p.next_message<note>(), "the batch report");
    CHECK(report.value.text == std::to_string(in_flight) + " right");

    auto t = co_await bounded(p.next_message<tick>(), "the tick request");
    const note not_an_answer{0, "not an answer"};
    (void)co_await p.reply(t, not_an_answer);
    report = co_await bounded(p.next_message<note>(), "the wrong-type report");
    CHECK(report.value.text == make_error_code(errc::unexpected_type).message());

    auto slow = co_await bounded(p.next_message<job>(), "the slow request");
    CHECK(slow.value.text == "slow");
    report = co_await bounded(p.next_message<note>(), "the timeout report");
    CHECK(report.value.text == std::make_error_code(std::errc::timed_out).message());
    const answer late{slow.value.id, 0};
    (void)co_await p.reply(slow, late);
    auto next = co_await bounded(p.next_message<job>(), "the next request");
    const answer a{next.value.id, next.value.text.size()};
    (void)co_await h.reply(next, a);
    report = co_await bounded(p.next_message<note>(), "the next report");
    CHECK(report.value.text == "answer 3 of length 4");

    auto last = co_await bounded(p.next_message<job>(), "the last request");
    CHECK(last.value.text == "leave");
    (void)co_await bounded(h.disconnect(), "the disconnect");
    const std::set<unsigned> ids{h.id()};
    auto log = co_await bounded(events_until_exit(p, ids), "the exit event");
    CHECK(story(log[1]) == "fork online disconnect exit");
    const auto& exit = exit_of(log[1]);
    CHECK(exit.status.success());  // the worker's last request saw peer_gone
    CHECK(exit.exited_after_disconnect);
}

task<void> ask_to_route(msg_handle& h, std::uint64_t target, std::string text) {
    const job j{target, std::move(text)};
    auto sent = co_await h.send(j);
    REQUIRE(sent.has_value());
}

// "3 got from 1: text", sorted.
std::vector<std::string> sorted(const std::vector<incoming<seen>>& got) {
    std::vector<std::string> out;
    for (const auto& s : got)
        out.push_back(std::to_string(s.value.by) + " got from " + std::to_string(s.value.from) + ": " + s.value.text);
    std::sort(out.begin(), out.end());
    return out;
}

task<void> await_online(primary<P>& p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) (void)co_await p.next<online_event>();
}

constexpr std::uint64_t burst_rounds = 5000;

task<void> bursts(primary<P>& p) {
    std::vector<msg_handle*> w;
    for (int i = 0; i < 3; ++i) w.push_back(&co_await support::fork_worker(p));  // ids 1 to 3
    co_await bounded(await_online(p, 3), "three workers online");
    // The receivers first: each has its count before the first tick can reach it.
    for (int i = 2; i >= 0; --i) co_await ask_to_route(*w[static_cast<std::size_t>(i)], burst_rounds, "burst");
    auto ticks = co_await bounded(take_messages<tick>(p, burst_rounds), "worker 1's ticks to the primary");
    std::uint64_t in_order = 0;
    while (in_order < ticks.size() && ticks[in_order].value.seq == in_order && ticks[in_order].from == 1) ++in_order;
    CHECK(in_order == burst_rounds);
    auto got = co_await bounded(take_messages<seen>(p, 2), "the receivers' reports");
    auto reports = sorted(got);
    // Between thread workers a send_to goes straight, and need not keep its place among broadcasts.
    const std::string_view interleaved = ", interleaved as sent";
    if (mode_under_test == start_mode::thread)
        for (auto& r : reports)
            if (r.ends_with(interleaved)) r.resize(r.size() - interleaved.size());
    const std::string whole =
        mode_under_test == start_mode::fork ? "each stream in order, interleaved as sent" : "each stream in order";
    const std::vector<std::string> expected{"2 got from 1: " + whole, "3 got from 1: " + whole};
    CHECK(reports == expected);
    const std::set<unsigned> ids{1, 2, 3};
    auto log = co_await finish(p, ids);
    for (unsigned id : ids) CHECK(story(log[id]) == "fork disconnect exit");  // nothing more reached anyone
}

task<void> routing(primary<P>& p) {
    std::vector<msg_handle*> w;
    for (int i = 0; i < 5; ++i) w.push_back(&co_await support::fork_worker(p));  // ids 1 to 5
    // Online before anyone leaves, so that what follows for 1, 2 and 3 is only their end.
    co_await bounded(await_online(p, 5), "five workers online");
    // 4 has exited and been forgotten; 5 is disconnected and not yet reaped.
    (void)co_await bounded(w[3]->disconnect(), "worker 4's disconnect");
    const std::set<unsigned> four{4};
    (void)co_await bounded(events_until_exit(p, four), "worker 4's exit");
    (void)co_await bounded(w[4]->disconnect(), "worker 5's disconnect");
    REQUIRE(p.worker(4) == nullptr);
    REQUIRE(p.worker(5) != nullptr);

    const std::array<std::uint64_t, 3> nowhere{4, 5, 99};
    for (std::uint64_t gone : nowhere) co_await ask_to_route(*w[0], gone, "send_to");
    co_await ask_to_route(*w[0], 3, "send_to");
    auto direct = co_await bounded(take_messages<seen>(p, 1), "worker 3's note");
    CHECK(direct[0].from == 3);
    CHECK(direct[0].value.from == 1);
    CHECK(direct[0].value.text == "send_to from 1");

    co_await ask_to_route(*w[1], 0, "broadcast");
    auto broadcast = co_await bounded(take_messages<seen>(p, 2), "the broadcast");
    const std::vector<std::string> expected{"1 got from 2: broadcast from 2", "3 got from 2: broadcast from 2"};
    CHECK(sorted(broadcast) == expected);

    // A worker handles what it received before the disconnect: a stray note's report
    // would come before its disconnect event.
    const std::set<unsigned> ids{1, 2, 3, 5};
    auto log = co_await finish(p, ids);
    for (unsigned id : {1u, 2u, 3u}) {
        CHECK(story(log[id]) == "disconnect exit");  // no note reached anyone twice, or its sender
        CHECK(exit_of(log[id]).status.success());
    }
}

task<void> fds_both_ways(primary<P>& p) {
    auto& h = co_await support::fork_worker(p);
    {
        auto given = co_await bounded(p.next_message<pipe_end>(), "the worker's pipe end");
        CHECK(given.value.label == "to the primary");
        REQUIRE(given.value.fd.valid());
        REQUIRE(::write(given.value.fd.get(), "hello", 5) == 5);
    }  // closed: the worker reads to the end
    auto heard = co_await bounded(p.next_message<note>(), "what the worker read");
    CHECK(heard.value.text == "hello");

    auto ends = support::make_pipe();
    {
        const pipe_end theirs{"the primary's pipe", std::move(ends[1])};
        auto sent = co_await h.send(theirs);
        REQUIRE(sent.has_value());
    }
    auto text = co_await bounded(read_to_end(ends[0].get()), "the worker's writing");
    CHECK(text == "through the primary's pipe from worker 1");
    const std::set<unsigned> ids{h.id()};
    auto log = co_await finish(p, ids);
    CHECK(exit_of(log[1]).status.success());
}

struct misbehaviour {
    const char* what;
    std::vector<std::uint8_t> bytes;
    bool then_exit;
    errc error;
};

std::vector<misbehaviour> misbehaviours() {
    const auto half = frame_of<P>(note{0, std::string(100, 'n')});
    return {
        {"bytes that are no frame", std::vector<std::uint8_t>(48, 0xab), false, errc::bad_frame},
        {"a type outside the protocol", frame_of<protocol<support::not_in_protocol>>(support::not_in_protocol{7}),
         false, errc::unknown_type},
        {"a job of another build", frame_of<protocol<support::older::job>>(support::older::job{7}), false,
         errc::schema_mismatch},
        {"half a frame, then death", {half.begin(), half.begin() + half.size() / 2}, true, errc::eof},
    };
}

task<void> echo_tick(msg_handle& h, std::uint64_t seq) {
    const tick t{seq};
    auto echoed = co_await h.request<tick>(t, patience);
    REQUIRE(echoed.has_value());
    CHECK(echoed->seq == seq);
}

// Starts a worker, has it misbehave, and returns its events to its exit.
task<std::vector<event<P>>> misbehave(primary<P>& p, const misbehaviour& m) {
    auto& bad = co_await support::fork_worker(p);
    const unsigned id = bad.id();
    const raw_bytes raw{m.bytes, m.then_exit};
    (void)co_await bad.send(raw);
    const std::set<unsigned> ids{id};
    auto log = co_await bounded(events_until_exit(p, ids), "the misbehaving worker's exit");
    co_return std::move(log[id]);
}

task<void> cut_off(primary<P>& p) {
    auto& good = co_await support::fork_worker(p);
    (void)co_await bounded(p.next<online_event>(), "the good worker online");
    (void)co_await bounded(p.next<fork_event>(), "the good worker's fork event");
    const auto fds = open_fd_count();
    std::uint64_t seq = 0;
    const auto cases = misbehaviours();
    for (const auto& m : cases) {
        INFO(m.what);
        {
            auto events = co_await misbehave(p, m);
            CHECK(story(events) == "fork online disconnect exit");
            const auto* d = events[2].get_if<disconnect_event>();
            REQUIRE(d);
            CHECK(d->error == m.error);
            CHECK(exit_of(events).status.success());
        }  // its msg_handle goes with its events
        CHECK(open_fd_count() == fds);
        co_await echo_tick(good, ++seq);
    }
    auto& fresh = co_await support::fork_worker(p);
    co_await echo_tick(fresh, ++seq);
    const unsigned good_id = good.id(), fresh_id = fresh.id();
    const std::set<unsigned> ids{good_id, fresh_id};
    auto log = co_await finish(p, ids);
    CHECK(story(log[good_id]) == "disconnect exit");
    CHECK(story(log[fresh_id]) == "fork online disconnect exit");
}

// A worker's routed messages, one of which does not check out, and a message for the primary
// after them, written at once: the one before reaches its target, the sender is cut off at the
// bad one, and what came after it is not read.
task<void> cut_off_mid_burst(primary<P>& p) {
    (void)co_await support::fork_worker(p);  // 1, the target
    auto& bad = co_await support::fork_worker(p);
    co_await bounded(await_online(p, 2), "two workers online");
    auto bytes = frame_of<P>(note{2, "before"}, 1, wire::frame_flags::routed);
    const auto broken = frame_of<protocol<support::older::job>>(support::older::job{7}, 1, wire::frame_flags::routed);
    const auto after = frame_of<P>(note{2, "after, for the primary"});
    bytes.insert(bytes.end(), broken.begin(), broken.end());
    bytes.insert(bytes.end(), after.begin(), after.end());
    const raw_bytes raw{bytes, false};
    (void)co_await bad.send(raw);
    auto got = co_await bounded(take_messages<seen>(p, 1), "the note before");
    CHECK(sorted(got) == std::vector<std::string>{"1 got from 2: before"});
    const std::set<unsigned> sender{2};
    auto log = co_await bounded(events_until_exit(p, sender), "the sender's exit");
    REQUIRE(story(log[2]) == "fork disconnect exit");  // no message: what came after was not read
    const auto* d = log[2][1].get_if<disconnect_event>();
    REQUIRE(d);
    CHECK(d->error == errc::schema_mismatch);
    const std::set<unsigned> target{1};
    auto rest = co_await finish(p, target);
    CHECK(story(rest[1]) == "disconnect exit");
}

// Regression: a worker that exited with a message from the primary in its socket, unread,
// reset the connection, and its disconnect event said ECONNRESET.
constexpr unsigned quitters = 4;

// The write end of a pipe the test reads: a worker says there that its loop will not turn
// again (fork-mode workers inherit it).
int waiting_fd = -1;

// After one turn of its loop (its online message sent, the primary's settings read), tells
// the test so and waits, with no turn more, until the primary's next message is in its
// socket, unread; then returns.
task<void> return_with_unread(worker<P>& w) {
    (void)co_await io::nop();
    const char byte = 1;
    if (::write(waiting_fd, &byte, 1) != 1) throw std::system_error(errno, std::system_category(), "write");
    const auto deadline = std::chrono::steady_clock::now() + patience;
    int queued = 0;
    while (::ioctl(w.native_handle(), FIONREAD, &queued) == 0 && queued == 0 &&
           std::chrono::steady_clock::now() < deadline) {}
}

task<void> sent_to_quitters(primary<P>& p) {
    auto told = support::make_pipe();
    waiting_fd = told[1].get();
    std::set<unsigned> ids;
    for (unsigned i = 0; i < quitters; ++i) {
        auto& h = co_await support::fork_worker(p);
        ids.insert(h.id());
        char byte = 0;
        auto waiting = co_await bounded(io::read_exact(told[0].get(), std::as_writable_bytes(std::span(&byte, 1))),
                                        "the worker to wait");
        REQUIRE(waiting.has_value());
        const tick t{i};
        (void)co_await h.send(t);
    }
    auto log = co_await bounded(events_until_exit(p, ids), "the workers' exits");
    for (unsigned id : ids) {
        INFO("worker " << id);
        CHECK(story(log[id]) == "fork online disconnect exit");
        const auto disconnected = support::all_of<disconnect_event>(log[id]);
        REQUIRE(disconnected.size() == 1);
        CHECK_FALSE(disconnected.front().error);
        CHECK(exit_of(log[id]).status.success());
    }
}

task<void> busy_order(primary<P>& p) {
    for (int i = 0; i < 3; ++i) (void)co_await support::fork_worker(p);
    const std::set<unsigned> ids{1, 2, 3};
    auto log = co_await bounded(events_until_exit(p, ids), "three chatty workers");
    for (unsigned id : ids) {
        INFO("worker " << id);
        const auto& events = log[id];
        REQUIRE(story(events) == "fork online " + std::to_string(chatter) + " messages disconnect exit");
        for (std::uint64_t i = 0; i < chatter; ++i) {
            const auto* t = events[2 + i].message<tick>();
            REQUIRE(t);
            REQUIRE(t->seq == i);
        }
        CHECK_FALSE(events[2 + chatter].get_if<disconnect_event>()->error);
        const auto& exit = exit_of(events);
        CHECK(exit.status.success());
        CHECK_FALSE(exit.exited_after_disconnect);
    }
}

// Queues a note, then forks before the loop's turn ends, so the note is still queued in the
// child, which tries to speak as the worker, then awaits a message (its parent's loop ends
// it for that). The worker tells the primary how its child went, then answers jobs.
task<void> forking_worker(worker<P>& w) {
    const note before{w.id(), "before the fork"};
    (void)co_await w.send(before);  // queued: it leaves at the end of this turn
    auto report = support::make_pipe();
    const unique_fd child_err(::memfd_create("stderr", MFD_CLOEXEC));
    expect(child_err.valid(), "memfd_create");
    const int link = w.native_handle();
    const pid_t pid = ::fork();
    if (pid == 0) {
        (void)::dup2(child_err.get(), STDERR_FILENO);
        const char closed = ::fcntl(link, F_GETFD) == -1 && errno == EBADF ? 'y' : 'n';
        const note from_child{w.id(), "from the child"};
        auto sent = co_await w.send(from_child);
        const char refused = !sent && sent.error() == errc::forked_child ? 'y' : 'n';
        const char verdict[] = {closed, refused};
        (void)!::write(report[1].get(), verdict, sizeof verdict);
        auto m = co_await w.receive();
        ::_exit(m ? 3 : 4);  // never: the loop, its parent's, ends the child first
    }
    expect(pid > 0, "fork");
    report[1].reset();
    auto child = child_process::adopt(pid).value();
    auto status = co_await child.wait();
    char verdict[2] = {'?', '?'};
    (void)!::read(report[0].get(), verdict, sizeof verdict);
    const bool ended_by_loop = support::read_all(child_err.get()).find("came back to that loop") != std::string::npos;
    std::string how = std::string("child: socket closed ") + verdict[0] + ", send refused " + verdict[1] + ", " +
                      (status ? status->to_string() : "?");
    if (ended_by_loop) how += ", ended by its parent's loop";
    co_await tell(w, std::move(how));  // built first: g++ 12 destroys a co_await's string temporaries twice
    while (auto m = co_await w.receive()) {
        if (auto* j = m->get_if<job>()) {
            const answer a{j->id, j->text.size()};
            (void)co_await w.reply(*m, a);
        }
    }
}

task<void> worker_forks(primary<P>& p) {
    auto& h = co_await support::fork_worker(p);
    const unsigned id = h.id();
    const std::set<unsigned> ids{id};
    auto first = co_await bounded(p.next_message<note>(), "the note queued before the fork");
    CHECK(first.value.text == "before the fork");
    auto second = co_await bounded(p.next_message<note>(), "how the child went");
    CHECK(second.value.text == "child: socket closed y, send refused y, exit code 1, ended by its parent's loop");
    const job j{5, "after the child"};
    auto r = co_await h.request<answer>(j, patience);
    CHECK(outcome_text(r) == "answer 5 of length 15");
    auto log = co_await finish(p, ids);
    CHECK(story(log[id]) == "fork online disconnect exit");  // nothing from the child, nothing twice
    const auto disconnected = support::all_of<disconnect_event>(log[id]);
    REQUIRE(disconnected.size() == 1);
    CHECK_FALSE(disconnected.front().error);
    CHECK(exit_of(log[id]).status.success());
}

// The test's life of a primary: body, then shutdown().
// Runs body against a primary of main's workers started in `mode` (see support::with_primary);
// nothing restarts on its own, as in Node.
template <class Body>
void with_primary(start_mode mode, typename worker<P>::main_function worker_main, Body body) {
    primary_options o;
    o.mode = mode;
    o.restart.mode = restart_mode::temporary;
    mode_under_test = mode;
    support::with_primary<P>(std::move(o), std::move(worker_main), std::move(body));
}

// What only a process has (its socket, a signal of its own, fork()): fork mode alone.
template <class Body>
void with_primary(typename worker<P>::main_function worker_main, Body body) {
    with_primary(start_mode::fork, std::move(worker_main), std::move(body));
}

// The cases that hold for every start mode run in each.
start_mode each_mode() {
    const start_mode mode = GENERATE(start_mode::fork, start_mode::thread);
    return mode;
}

}  // namespace

TEST_CASE("ten thousand messages of two types each way arrive in order and intact") {
    const start_mode mode = each_mode();
    INFO(to_string(mode));
    with_primary(mode, echo_worker, both_ways_in_order);
}

TEST_CASE("next_message skips other kinds and a worker's receive<T> leaves others queued") {
    const start_mode mode = each_mode();
    INFO(to_string(mode));
    with_primary(mode, picky_worker, picking_by_type);
}

TEST_CASE("the primary's requests are answered and correlated, and fail on wrong type, timeout, or death") {
    const start_mode mode = each_mode();
    INFO(to_string(mode));
    with_primary(mode, answering_worker, primary_asks);
}

TEST_CASE("a worker's requests are answered by the primary, and fail with peer_gone on disconnect") {
    const start_mode mode = each_mode();
    INFO(to_string(mode));
    with_primary(mode, asking_worker, worker_asks);
}

TEST_CASE("send_to reaches one worker and broadcast every other, from the sender, and gone targets drop") {
    const start_mode mode = each_mode();
    INFO(to_string(mode));
    with_primary(mode, routing_worker, routing);
}

TEST_CASE("messages for other workers that come many to a read keep each target's order, and the primary's own") {
    const start_mode mode = each_mode();
    INFO(to_string(mode));
    with_primary(mode, burst_worker, bursts);
}

TEST_CASE("fds in messages go from a worker to the primary and back, and work") {
    const start_mode mode = each_mode();
    INFO(to_string(mode));
    const auto fds = open_fd_count();
    with_primary(mode, fd_worker, fds_both_ways);
    CHECK(open_fd_count() == fds);
}

TEST_CASE("a worker that breaks the protocol or dies mid-frame is cut off and the primary carries on") {
    with_primary(raw_worker, cut_off);
}

TEST_CASE("a routed message that does not check out cuts its sender off there, after what came before it") {
    with_primary(routing_worker, cut_off_mid_burst);
}

TEST_CASE("during heavy traffic each worker's events keep their order") {
    const start_mode mode = each_mode();
    INFO(to_string(mode));
    with_primary(mode, chatty_worker, busy_order);
}

TEST_CASE("a child a worker forks cannot speak as it nor send its queue again, and the worker goes on") {
    with_primary(forking_worker, worker_forks);
}

TEST_CASE("a worker that returns with a message unread leaves with a clean disconnect") {
    with_primary(return_with_unread, sent_to_quitters);
}
