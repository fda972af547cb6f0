// io::shield: the caller gets the task's value or exception; a stop asked of the caller
// ends only its wait, and the task finishes in its scope; the scope's own stop reaches it.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/io/shield.hpp>

#include "support/loop.hpp"
#include "support/waiting.hpp"

#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>

using namespace cluster;
using cluster::io::shield;

namespace {

// Waits for `go`, then notes that it finished (or that it was stopped instead).
task<int> wait_then_answer(latch& go, std::string& log) {
    const bool went = co_await go.wait();
    log += went ? "finished" : "stopped";
    co_return 42;
}

task<void> fail_after(latch& go) {
    (void)co_await go.wait();
    throw std::runtime_error("failed on purpose");
}

// A task shielded in `owner`, and its caller, spawned in `callers` (under `caller_stop`):
// what each of them saw is in the logs.
struct shielded_call {
    scope owner;
    latch go;
    std::string task_log, caller_log;
    std::stop_source caller_stop;
    scope callers;

    shielded_call() { callers.spawn(support::under(caller_stop.get_token(), call())); }

    task<void> call() {
        try {
            const int answer = co_await shield(owner, wait_then_answer(go, task_log));
            caller_log = "got " + std::to_string(answer);
        } catch (const std::system_error& e) {
            caller_log = e.code() == std::errc::operation_canceled ? "canceled" : e.what();
        }
    }
};

}  // namespace

TEST_CASE("shield gives the caller the task's value, or rethrows its exception") {
    support::run_on_loop([]() -> task<void> {
        shielded_call c;
        c.go.set();
        co_await c.callers.join();
        CHECK(c.caller_log == "got 42");
        CHECK(c.task_log == "finished");

        std::string thrown;
        try {
            co_await shield(c.owner, fail_after(c.go));
        } catch (const std::runtime_error& e) {
            thrown = e.what();
        }
        CHECK(thrown == "failed on purpose");
        co_await c.owner.join();
    });
}

TEST_CASE("a stop asked of the caller ends its wait, the shielded task finishes all the same") {
    support::run_on_loop([]() -> task<void> {
        shielded_call c;
        c.caller_stop.request_stop();
        co_await c.callers.join();
        CHECK(c.caller_log == "canceled");
        CHECK(c.task_log.empty());  // still waiting, in the owner's scope
        CHECK(c.owner.size() == 1);
        c.go.set();
        co_await c.owner.join();
        CHECK(c.task_log == "finished");
    });
}

TEST_CASE("the owner's stop reaches the shielded task") {
    support::run_on_loop([]() -> task<void> {
        shielded_call c;
        c.owner.request_stop();
        co_await c.callers.join();
        CHECK(c.task_log == "stopped");
        CHECK(c.caller_log == "got 42");  // it returned after its wait was stopped
    });
}

TEST_CASE("a task of void is shielded too") {
    support::run_on_loop([]() -> task<void> {
        scope owner;
        latch go;
        bool ran = false;
        auto note_when_released = [](latch& l, bool& flag) -> task<void> {
            (void)co_await l.wait();
            flag = true;
        };
        go.set();
        co_await shield(owner, note_when_released(go, ran));
        CHECK(ran);
    });
}
