// io::shield: the caller gets the task's value or exception; a stop asked of the caller
// ends only its wait, and the task finishes in its scope; the scope's own stop reaches it.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>
#include <cluster/io/shield.hpp>

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

// Awaits the shielded task, noting how the wait ended.
task<void> await_shielded(scope& owner, latch& go, std::string& task_log, std::string& caller_log) {
    try {
        const int answer = co_await shield(owner, wait_then_answer(go, task_log));
        caller_log = "got " + std::to_string(answer);
    } catch (const std::system_error& e) {
        caller_log = e.code() == std::errc::operation_canceled ? "canceled" : e.what();
    }
}

// Runs t under `token` (a scope gives the tasks it spawns its own).
task<void> under(std::stop_token token, task<void> t) { co_await std::move(t).with_stop_token(std::move(token)); }

template <class Body>
void run(Body body) {
    io_context ctx;
    sync_wait(body());
}

}  // namespace

TEST_CASE("shield gives the caller the task's value, or rethrows its exception") {
    run([]() -> task<void> {
        scope owner;
        latch go;
        std::string task_log, caller_log;
        scope callers;
        callers.spawn(await_shielded(owner, go, task_log, caller_log));
        go.set();
        co_await callers.join();
        CHECK(caller_log == "got 42");
        CHECK(task_log == "finished");

        latch fail;
        fail.set();
        std::string thrown;
        try {
            co_await shield(owner, fail_after(fail));
        } catch (const std::runtime_error& e) {
            thrown = e.what();
        }
        CHECK(thrown == "failed on purpose");
        co_await owner.join();
    });
}

TEST_CASE("a stop asked of the caller ends its wait; the shielded task finishes all the same") {
    run([]() -> task<void> {
        scope owner;
        latch go;
        std::string task_log, caller_log;
        std::stop_source caller_stop;
        scope callers;
        callers.spawn(under(caller_stop.get_token(), await_shielded(owner, go, task_log, caller_log)));
        caller_stop.request_stop();
        co_await callers.join();
        CHECK(caller_log == "canceled");
        CHECK(task_log.empty());  // still waiting, in the owner's scope
        CHECK(owner.size() == 1);
        go.set();
        co_await owner.join();
        CHECK(task_log == "finished");
    });
}

TEST_CASE("the owner's stop reaches the shielded task") {
    run([]() -> task<void> {
        scope owner;
        latch go;
        std::string task_log, caller_log;
        scope callers;
        callers.spawn(await_shielded(owner, go, task_log, caller_log));
        owner.request_stop();
        co_await callers.join();
        CHECK(task_log == "stopped");
        CHECK(caller_log == "got 42");  // it returned after its wait was stopped
    });
}

TEST_CASE("a task of void is shielded too") {
    run([]() -> task<void> {
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
