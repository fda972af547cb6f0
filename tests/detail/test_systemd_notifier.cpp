// cluster::detail::systemd_notifier: the sd_notify datagrams, to a path and to an abstract
// name, the status line, the watchdog's interval and beat, what is taken from the environment,
// and a socket that is not there (one line on stderr, nothing more).
#include <catch2/catch.hpp>

#include <cluster/cluster.hpp>
#include <cluster/detail/systemd_notifier.hpp>

#include "support/captured_stderr.hpp"
#include "support/notify_socket.hpp"
#include "support/temp_dir.hpp"
#include "support/waiting.hpp"

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

using namespace cluster;
using namespace std::chrono_literals;
using detail::service_status;
using detail::status_text;
using detail::systemd_notifier;

namespace {

std::uint64_t monotonic_usec() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000u + static_cast<std::uint64_t>(now.tv_nsec) / 1000u;
}

std::string next(support::notify_socket& s) {
    io_context ctx;
    return sync_wait(s.next());
}

}  // namespace

TEST_CASE("the status line counts workers and restarts, and says a reload's progress or the stop") {
    CHECK(status_text(service_status{.workers = 4, .restarts = 12}) == "4 workers, 12 restarts");
    CHECK(status_text(service_status{.workers = 1, .restarts = 1}) == "1 worker, 1 restart");
    CHECK(status_text(service_status{.workers = 4, .restarts = 0, .reloaded = 2, .reloading = 4}) ==
          "4 workers, 0 restarts, reloading 2/4");
    CHECK(status_text(service_status{.workers = 3, .stopping = true}) == "stopping");
}

TEST_CASE("the watchdog beats at half WATCHDOG_USEC, only in the process WATCHDOG_PID names") {
    CHECK(systemd_notifier("/run/notify", "30000000", nullptr, 42).watchdog_interval() == 15s);
    CHECK(systemd_notifier("/run/notify", "30000000", "42", 42).watchdog_interval() == 15s);
    CHECK(systemd_notifier("/run/notify", "30000000", "43", 42).watchdog_interval() == 0us);
    CHECK(systemd_notifier("/run/notify", "30000000", "x", 42).watchdog_interval() == 0us);
    CHECK(systemd_notifier(nullptr, "30000000", nullptr, 42).watchdog_interval() == 0us);
    const auto warned = support::stderr_of([] {
        CHECK(systemd_notifier("/run/notify", "soon", nullptr, 42).watchdog_interval() == 0us);
        CHECK(systemd_notifier("/run/notify", "0", nullptr, 42).watchdog_interval() == 0us);
    });
    CHECK(warned.find("cluster: sd_notify: WATCHDOG_USEC=\"soon\": not a positive number") != std::string::npos);
    CHECK_FALSE(systemd_notifier().enabled());
    CHECK_FALSE(systemd_notifier().send("READY=1"));
}

TEST_CASE("the notifier takes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from the environment, and keeps them") {
    ::setenv("NOTIFY_SOCKET", "@cluster-test-unused", 1);
    ::setenv("WATCHDOG_USEC", "2000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    const auto n = systemd_notifier::from_environment();
    CHECK(std::getenv("NOTIFY_SOCKET") == nullptr);
    CHECK(std::getenv("WATCHDOG_USEC") == nullptr);
    CHECK(std::getenv("WATCHDOG_PID") == nullptr);
    CHECK(n.enabled());
    CHECK(n.socket() == "@cluster-test-unused");
    CHECK(n.watchdog_usec() == "2000000");
    CHECK(n.watchdog_interval() == 1s);
}

TEST_CASE("each notification is one datagram, to a path or an abstract name") {
    support::temp_dir dir;
    for (const std::string& address : {dir.file("notify"), "@cluster-test-notify-" + std::to_string(::getpid())}) {
        support::notify_socket s(address);
        auto n = systemd_notifier::from_environment();
        REQUIRE(n.socket() == address);
        const service_status serving{.workers = 2, .restarts = 0};
        n.ready(serving);
        CHECK(next(s) == "READY=1\nSTATUS=2 workers, 0 restarts");
        n.status(serving);  // the same again: not sent
        n.status(service_status{.workers = 2, .restarts = 1});
        CHECK(next(s) == "STATUS=2 workers, 1 restart");
        const auto before = monotonic_usec();
        n.reloading(service_status{.workers = 2, .restarts = 1, .reloaded = 0, .reloading = 2});
        const auto reloading = next(s);
        unsigned long long usec = 0;
        char status[64] = {};
        REQUIRE(std::sscanf(reloading.c_str(), "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=%63[^\n]", &usec, status) ==
                2);
        CHECK(usec >= before);
        CHECK(usec <= monotonic_usec());
        CHECK(std::string(status) == "2 workers, 1 restart, reloading 0/2");
        n.stopping();
        CHECK(next(s) == "STOPPING=1\nSTATUS=stopping");
        n.main_pid(4242);
        CHECK(next(s) == "MAINPID=4242");
        CHECK(n.send("EXTEND_TIMEOUT_USEC=1000000"));
        CHECK(next(s) == "EXTEND_TIMEOUT_USEC=1000000");
    }
}

TEST_CASE("the watchdog beats at once and then every half WATCHDOG_USEC while the loop turns") {
    support::notify_socket s("@cluster-test-watchdog-" + std::to_string(::getpid()));
    systemd_notifier n(s.address().c_str(), "40000", nullptr, ::getpid());
    REQUIRE(n.watchdog_interval() == 20ms);
    io_context ctx;
    scope beating;
    beating.spawn(systemd_notifier::keep_watchdog(n));
    std::vector<std::chrono::steady_clock::time_point> beats;
    for (int i = 0; i < 4; ++i) {
        CHECK(sync_wait(s.next()) == "WATCHDOG=1");
        beats.push_back(std::chrono::steady_clock::now());
    }
    for (std::size_t i = 1; i < beats.size(); ++i) CHECK(beats[i] - beats[i - 1] >= 15ms);
    beating.request_stop();
    sync_wait(support::joined(beating));
}

TEST_CASE("a notification socket that is not there: one line on stderr, however many are sent") {
    support::temp_dir dir;
    systemd_notifier n(dir.file("missing").c_str(), nullptr, nullptr, ::getpid());
    const auto said = support::stderr_of([&n] {
        for (int i = 0; i < 5; ++i) CHECK_FALSE(n.send("WATCHDOG=1"));
        n.ready(service_status{});
    });
    CHECK(said == "cluster: sd_notify: " + dir.file("missing") +
                      ": No such file or directory (said once; the service runs on)\n");
    const auto relative =
        support::stderr_of([] { CHECK_FALSE(systemd_notifier("run/notify", nullptr, nullptr, 1).send("READY=1")); });
    CHECK(relative.find("not a Unix socket's path") != std::string::npos);
}
