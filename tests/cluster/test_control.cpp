// The control socket of a real primary (primary_options::control), asked as clusterctl asks it:
// status lists the live workers; scale, reload and stop act on the cluster; logs follows two
// workers' relayed lines; refused requests and clients that hang change nothing and never hold
// up supervision.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <boost/json/src.hpp>

#include "support/control_client.hpp"
#include "support/primary.hpp"
#include "support/temp_dir.hpp"
#include "support/waiting.hpp"

#include <signal.h>

#include <cstdio>
#include <set>
#include <string>
#include <vector>

using namespace cluster;
using support::ask_control;
using support::bounded;

namespace {

struct say {
    std::string text;
};
BOOST_DESCRIBE_STRUCT(say, (), (text))
using say_proto = protocol<say>;

// Prints what it is told to say, a line at a time, at once.
task<void> saying(worker<say_proto>& w) {
    while (auto m = co_await w.receive()) {
        if (const auto* s = m->get_if<say>()) {
            std::printf("%s\n", s->text.c_str());
            std::fflush(stdout);
        }
    }
}

boost::json::object answer_of(const std::string& text) {
    INFO(text);
    REQUIRE(!text.empty());
    return boost::json::parse(text).as_object();
}

std::set<std::int64_t> pids_in(const boost::json::object& status) {
    std::set<std::int64_t> pids;
    for (const auto& w : status.at("workers").as_array()) pids.insert(w.at("pid").as_int64());
    return pids;
}

std::set<std::int64_t> pids_of(const primary<say_proto>& p) {
    std::set<std::int64_t> pids;
    for (const auto* h : p.workers()) pids.insert(h->pid());
    return pids;
}

primary_options with_control(const support::temp_dir& dir) {
    primary_options o;
    o.control = dir.file("control.sock");
    o.silent = true;
    return o;
}

}  // namespace

TEST_CASE("status lists every live worker, scale and reload change them, and the answers are JSON") {
    support::temp_dir dir;
    const auto o = with_control(dir);
    support::with_primary<say_proto>(o, saying, [&](primary<say_proto>& p) -> task<void> {
        for (int i = 0; i < 2; ++i) (void)co_await support::fork_worker(p);
        const auto listed = answer_of(co_await ask_control(o.control, "status\n"));
        CHECK(listed.at("primary_pid").as_int64() == ::getpid());
        CHECK(listed.at("workers_wanted").as_int64() == 2);
        CHECK(pids_in(listed) == pids_of(p));
        for (const auto& w : listed.at("workers").as_array()) {
            CHECK(w.at("rss_bytes").as_int64() > 0);
            CHECK(w.at("cpu_percent").to_number<double>() >= 0);
        }

        const auto grown = answer_of(co_await ask_control(o.control, "scale 3\n"));
        CHECK(grown.at("ok").as_bool());
        CHECK(p.target() == 3);
        CHECK(p.workers().size() == 3);
        const auto shrunk = answer_of(co_await ask_control(o.control, "scale 1\n"));
        CHECK(shrunk.at("ok").as_bool());
        CHECK(p.target() == 1);

        const auto before = pids_of(p);
        const auto reloaded = answer_of(co_await ask_control(o.control, "reload\n"));
        CHECK(reloaded.at("ok").as_bool());
        CHECK(reloaded.at("replaced").as_int64() == 1);
        const auto after = answer_of(co_await ask_control(o.control, "status\n"));
        CHECK(pids_in(after).size() == 1);
        CHECK(pids_in(after) != before);
    });
    CHECK(::access(o.control.c_str(), F_OK) != 0);
}

TEST_CASE("scale 0 and scale 100000 are refused with the limit, and hanging clients do not hold up a restart") {
    support::temp_dir dir;
    const auto o = with_control(dir);
    support::with_primary<say_proto>(o, saying, [&](primary<say_proto>& p) -> task<void> {
        auto& h = co_await support::fork_worker(p);
        const auto zero = answer_of(co_await ask_control(o.control, "scale 0\n"));
        CHECK(zero.at("error").as_string() == "scale takes a number of workers from 1 to 1024, not 0");
        const auto absurd = answer_of(co_await ask_control(o.control, "scale 100000\n"));
        CHECK(absurd.at("error").as_string() == "scale takes a number of workers from 1 to 1024, not 100000");
        CHECK(p.target() == 1);

        // Clients that never finish their request, and one that sends garbage, meanwhile.
        std::vector<unique_fd> hanging;
        for (int i = 0; i < 8; ++i) hanging.push_back(support::control_connection(o.control));
        co_await support::send_text(hanging.front().get(), "sta");
        auto garbage = support::control_connection(o.control);
        co_await support::send_text(garbage.get(), std::string(100'000, '\x7f'));

        const pid_t killed = h.pid();
        REQUIRE(h.kill(SIGKILL).has_value());
        for (;;) {
            auto e = co_await bounded(p.next_event());
            if (const auto* f = e.get_if<fork_event>(); f && f->pid != killed) break;
        }
        const auto status = answer_of(co_await ask_control(o.control, "status\n"));
        REQUIRE(status.at("workers").as_array().size() == 1);
        CHECK(status.at("workers").as_array()[0].at("pid").as_int64() != killed);
        const auto refused = co_await support::read_to_end(garbage.get());
        CHECK(answer_of(refused).at("error").as_string() == "request longer than 256 bytes: send one line");
    });
}

TEST_CASE("logs follows two workers' relayed lines, each with its [worker N] prefix") {
    support::temp_dir dir;
    const auto o = with_control(dir);
    support::with_primary<say_proto>(o, saying, [&](primary<say_proto>& p) -> task<void> {
        auto& one = co_await support::fork_worker(p);
        auto& two = co_await support::fork_worker(p);
        auto follower = support::control_connection(o.control);
        co_await support::send_text(follower.get(), "logs\n");
        std::string pending;
        const auto following = co_await support::read_line(follower.get(), pending);
        CHECK(answer_of(following).at("following").as_bool());
        const say from_one{"hello from one"}, from_two{"hello from two"};
        REQUIRE((co_await one.send(from_one)).has_value());
        REQUIRE((co_await two.send(from_two)).has_value());
        std::set<std::string> lines;
        while (lines.size() < 2) {
            auto line = co_await bounded(support::read_line(follower.get(), pending));
            REQUIRE(!line.empty());
            lines.insert(line);
        }
        CHECK(lines == std::set<std::string>{"[worker " + std::to_string(one.id()) + "] hello from one\n",
                                             "[worker " + std::to_string(two.id()) + "] hello from two\n"});
    });
}

// The client is another task, as it would be another process: main is cancelled by the stop.
task<std::string> stop_once_started(io::latch& started, std::string path) {
    (void)co_await started.wait();
    co_return co_await ask_control(std::move(path), "stop\n");
}

TEST_CASE("stop ends run() as SIGTERM would, and only the primary's user and root may ask") {
    support::temp_dir dir;
    const auto o = with_control(dir);
    support::with_primary<say_proto>(o, saying, [&](primary<say_proto>& p) -> task<void> {
        io::latch started;
        auto main = [&](primary<say_proto>& self) -> task<void> {
            (void)co_await support::fork_worker(self);
            if (::geteuid() == 0) {
                REQUIRE(::chmod(dir.str().c_str(), 0755) == 0);
                const auto denied = co_await support::ask_control_as(65534, o.control, "stop\n");
                CHECK(denied == "connect: Permission denied");
            }
            started.set();
            for (;;) (void)co_await self.next_event();
        };
        auto [code, stopping] = co_await when_all(p.run(main), stop_once_started(started, o.control));
        CHECK(code == exit_code::ok);
        CHECK(answer_of(stopping).at("stopping").as_bool());
        CHECK(p.workers().empty());
    });
}
