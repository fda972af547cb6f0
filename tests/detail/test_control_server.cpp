// detail::control_server against a stand-in target, over its real Unix socket: each command
// answered; garbage, a line too long and a request never finished answered with an error in
// bounded time; clients past the limit refused at once; another uid refused; logs followed;
// the socket file's mode, a stale file replaced, a live one kept, and the file removed at the end.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <boost/json/src.hpp>

#include "support/control_client.hpp"
#include "support/descriptors.hpp"
#include "support/temp_dir.hpp"
#include "support/waiting.hpp"

#include <cluster/detail/control_server.hpp>
#include <cluster/io.hpp>

#include <sys/stat.h>

#include <string>
#include <vector>

using namespace cluster;
using namespace std::chrono_literals;
using support::ask_control;
using support::bounded;

namespace {

class stand_in final : public detail::control_target {
public:
    cluster_status snapshot;
    std::vector<std::size_t> scaled;
    int reloads = 0;
    bool stopped = false;
    std::string upgrade_refusal;
    detail::log_tap tap;

    cluster_status status() override { return snapshot; }
    task<reload_event> reload() override {
        ++reloads;
        reload_event e;
        e.replaced = 2;
        co_return e;
    }
    task<std::string> scale(std::size_t n) override {
        scaled.push_back(n);
        co_return std::string{};
    }
    void stop() override { stopped = true; }
    std::string upgrade() override { return upgrade_refusal; }
    detail::log_tap& logs() override { return tap; }
};

const detail::control_limits quick{.max_request = 64, .request_time = 300ms, .answer_time = 2s, .max_clients = 4};

boost::json::object answer_of(const std::string& text) {
    INFO(text);
    REQUIRE(!text.empty());
    REQUIRE(text.find('\n') == text.size() - 1);
    return boost::json::parse(text).as_object();
}

std::string error_of(const std::string& text) {
    auto o = answer_of(text);
    CHECK_FALSE(o.at("ok").as_bool());
    return std::string(o.at("error").as_string());
}

// Runs body(server, target, path) against a server at a fresh path, on a fresh loop.
template <class Body>
void with_server(Body&& body, detail::control_limits limits = quick) {
    const std::size_t fds = support::open_fd_count();
    {
        support::temp_dir dir;
        const std::string path = dir.file("control.sock");
        io_context ctx;
        overload_counts counts;
        stand_in target;
        detail::control_server server(path, target, counts, false, limits);
        sync_wait(bounded(body(server, target, path), 30s));
    }
    CHECK(support::open_fd_count() == fds);
}

}  // namespace

TEST_CASE("each command is answered with one JSON line and reaches the target") {
    with_server([](detail::control_server&, stand_in& t, const std::string& path) -> task<void> {
        worker_status w;
        w.id = 7;
        w.pid = 1234;
        w.state = worker_state::ready;
        t.snapshot.workers.push_back(w);
        auto status = answer_of(co_await ask_control(path, "status\n"));
        CHECK(status.at("ok").as_bool());
        REQUIRE(status.at("workers").as_array().size() == 1);
        CHECK(status.at("workers").as_array()[0].at("id").as_int64() == 7);

        auto reload = answer_of(co_await ask_control(path, "reload\n"));
        CHECK(reload.at("ok").as_bool());
        CHECK(reload.at("replaced").as_int64() == 2);
        CHECK(t.reloads == 1);

        const auto scaled = co_await ask_control(path, "scale 3\n");
        CHECK(answer_of(scaled).at("workers").as_int64() == 3);
        CHECK(t.scaled == std::vector<std::size_t>{3});

        const auto upgrading = co_await ask_control(path, "upgrade\n");
        CHECK(answer_of(upgrading).at("upgrading").as_bool());
        t.upgrade_refusal = "a reload is running";
        const auto refused = co_await ask_control(path, "upgrade\n");
        CHECK(error_of(refused) == "upgrade refused: a reload is running");

        // A request without its newline, the client's end closed after it: a whole request still.
        const auto stopping = co_await ask_control(path, "stop");
        CHECK(answer_of(stopping).at("stopping").as_bool());
        CHECK(t.stopped);
    });
}

TEST_CASE("scale 0 and scale 100000 are refused with the limit, and the target hears nothing") {
    with_server([](detail::control_server&, stand_in& t, const std::string& path) -> task<void> {
        const auto zero = co_await ask_control(path, "scale 0\n");
        CHECK(error_of(zero) == "scale takes a number of workers from 1 to 1024, not 0");
        const auto absurd = co_await ask_control(path, "scale 100000\n");
        CHECK(error_of(absurd) == "scale takes a number of workers from 1 to 1024, not 100000");
        CHECK(t.scaled.empty());
    });
}

TEST_CASE("garbage, a line past max_request and a request never finished get an error, in bounded time") {
    with_server([](detail::control_server&, stand_in& t, const std::string& path) -> task<void> {
        const auto garbage = co_await ask_control(path, std::string("\x16\x03\x01\x02\x00\x01\xff\n", 8));
        CHECK(error_of(garbage).starts_with("unknown command"));
        const auto long_line = co_await ask_control(path, std::string(1000, 'x'));
        CHECK(error_of(long_line) == "request longer than 64 bytes: send one line");
        auto idle = support::control_connection(path);
        co_await support::send_text(idle.get(), "sta");
        const auto timed_out = co_await support::read_to_end(idle.get());
        CHECK(error_of(timed_out) == "no whole request line within 300 ms");
        idle.reset();
        CHECK(t.scaled.empty());
        CHECK_FALSE(t.stopped);
        const auto status = co_await ask_control(path, "status\n");
        CHECK(answer_of(status).at("ok").as_bool());
    });
}

TEST_CASE("clients past max_clients are refused at once, and served again once the others have gone") {
    with_server([](detail::control_server& server, stand_in&, const std::string& path) -> task<void> {
        std::vector<unique_fd> idle;
        for (int i = 0; i < 4; ++i) idle.push_back(support::control_connection(path));
        // Accepted in order: the fifth comes after the four.
        auto extra = support::control_connection(path);
        const auto busy = co_await support::read_to_end(extra.get());
        CHECK(error_of(busy) == "too many control clients at once (4): try again shortly");
        CHECK(server.clients() == 4);
        for (auto& fd : idle) {
            const auto timed_out = co_await support::read_to_end(fd.get());
            CHECK(error_of(timed_out).starts_with("no whole request"));
            fd.reset();
        }
        const auto served = co_await ask_control(path, "status\n");
        CHECK(answer_of(served).at("ok").as_bool());
    });
}

TEST_CASE("a client of another uid is refused, told why, and nothing it asks is done") {
    if (::geteuid() != 0) {
        WARN("skipped: needs root, to run a client as nobody");
        return;
    }
    with_server([](detail::control_server&, stand_in& t, const std::string& path) -> task<void> {
        // The file's mode would stop nobody at connect(): opened up, the server must.
        REQUIRE(::chmod(path.substr(0, path.rfind('/')).c_str(), 0755) == 0);
        REQUIRE(::chmod(path.c_str(), 0666) == 0);
        const auto refused = co_await support::ask_control_as(65534, path, "stop\n");
        CHECK(error_of(refused) == "permission denied: only uid 0 (the primary's user) and root may use this socket");
        CHECK_FALSE(t.stopped);
        REQUIRE(::chmod(path.c_str(), 0600) == 0);
        const auto denied = co_await support::ask_control_as(65534, path, "stop\n");
        CHECK(denied == "connect: Permission denied");
        CHECK_FALSE(t.stopped);
    });
}

TEST_CASE("logs answers, then follows what the tap copies, line by line") {
    with_server([](detail::control_server& server, stand_in& t, const std::string& path) -> task<void> {
        auto fd = support::control_connection(path);
        co_await support::send_text(fd.get(), "logs\n");
        std::string pending;
        const auto following = co_await support::read_line(fd.get(), pending);
        CHECK(answer_of(following).at("following").as_bool());
        CHECK(t.tap.followers() == 1);
        t.tap.copy("[worker 1] one\n[worker 2] two\n");
        const auto first = co_await support::read_line(fd.get(), pending);
        CHECK(first == "[worker 1] one\n");
        const auto second = co_await support::read_line(fd.get(), pending);
        CHECK(second == "[worker 2] two\n");
        CHECK(server.clients() == 1);
    });
}

TEST_CASE("the socket file has mode 0600, a stale one is replaced, a live one only once a successor took over, and it "
          "goes at the end") {
    support::temp_dir dir;
    const std::string path = dir.file("control.sock");
    io_context ctx;
    overload_counts counts;
    stand_in target;
    {
        // A socket file nobody listens on any more: a primary that crashed.
        auto stale = net::listen_socket(net::endpoint::unix_socket(path));
    }
    {
        detail::control_server server(path, target, counts, false);
        struct stat st {};
        REQUIRE(::lstat(path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 0777) == 0600);
        try {
            detail::control_server second(path, target, counts, false);
            FAIL("a second server took a live control socket's path");
        } catch (const std::system_error& e) {
            CHECK(std::string(e.what()) == "cluster: control socket " + path +
                                               ": a process listens there already (another primary?): " +
                                               std::make_error_code(std::errc::address_in_use).message());
        }
        {
            // A binary upgrade's successor listens beside the path until it has taken over;
            // then the path is its own, and its predecessor leaves it to it.
            detail::control_server successor(path, target, counts, true);
            struct stat kept {};
            REQUIRE(::lstat(path.c_str(), &kept) == 0);
            CHECK(kept.st_ino == st.st_ino);
            REQUIRE(successor.take_path().has_value());
            struct stat taken {};
            REQUIRE(::lstat(path.c_str(), &taken) == 0);
            CHECK(taken.st_ino != st.st_ino);
        }
        CHECK(::access(path.c_str(), F_OK) != 0);
    }
    CHECK(::access(path.c_str(), F_OK) != 0);
}
