// task<T>: lazy, move-only coroutines — values, references, void, exceptions, and
// long chains of synchronously-completing awaits that must not grow the stack.
#include <catch2/catch.hpp>

#include <cluster/io.hpp>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace cluster;

namespace {

task<int> answer() { co_return 42; }

task<std::string> greet(std::string who) { co_return "hello " + who; }

task<int&> pick(std::vector<int>& v, std::size_t i) { co_return v[i]; }

task<void> bump(int& n) {
    ++n;
    co_return;
}

task<std::unique_ptr<int>> make_unique_int(int v) { co_return std::make_unique<int>(v); }

struct boom : std::runtime_error {
    using std::runtime_error::runtime_error;
};

task<int> level3() {
    throw boom("from level 3");
    co_return 0;
}
task<int> level2() { co_return co_await level3() + 1; }
task<int> level1() { co_return co_await level2() + 1; }
task<void> level0(bool& reached_after) {
    (void)co_await level1();
    reached_after = true;  // never: level1 throws through here
}

task<int> one() { co_return 1; }
task<void> nothing() { co_return; }

task<long> sum_sync(int n) {
    long total = 0;
    for (int i = 0; i < n; ++i) total += co_await one();
    co_return total;
}

task<int> count_void_sync(int n) {
    int count = 0;
    for (int i = 0; i < n; ++i) {
        co_await nothing();
        ++count;
    }
    co_return count;
}

// Runs `body` on a thread with a 1 MiB stack inside a forked child, so that a stack
// overflow is a failed exit status instead of a crashed test runner. Returns the
// child's wait status.
template <class Body>
int run_on_small_stack_in_child(Body body) {
    pid_t pid = ::fork();
    if (pid < 0) throw std::system_error(errno, std::system_category(), "fork");
    if (pid == 0) {
        struct ctx_t {
            Body* body;
            bool ok = false;
        } ctx{&body};
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 1 << 20);
        pthread_t th;
        int err = pthread_create(
            &th, &attr,
            [](void* p) -> void* {
                auto* c = static_cast<ctx_t*>(p);
                try {
                    c->ok = (*c->body)();
                } catch (...) {
                    c->ok = false;
                }
                return nullptr;
            },
            &ctx);
        if (err != 0) ::_exit(3);
        pthread_join(th, nullptr);
        ::_exit(ctx.ok ? 0 : 1);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    return status;
}

}  // namespace

TEST_CASE("task<T> returns its value through co_await and sync_wait") {
    CHECK(sync_wait(answer()) == 42);
    CHECK(sync_wait(greet("world")) == "hello world");
    auto p = sync_wait(make_unique_int(7));  // move-only value types work
    REQUIRE(p);
    CHECK(*p == 7);
    auto outer = []() -> task<int> { co_return co_await answer() + co_await answer(); };
    CHECK(sync_wait(outer()) == 84);
}

TEST_CASE("task<T&> yields a reference to the very object") {
    std::vector<int> v{1, 2, 3};
    int& r = sync_wait(pick(v, 1));
    CHECK(&r == &v[1]);
    r = 20;
    CHECK(v[1] == 20);
    auto through = [](std::vector<int>& vec) -> task<void> {
        int& x = co_await pick(vec, 2);
        x = 30;
    };
    sync_wait(through(v));
    CHECK(v[2] == 30);
}

TEST_CASE("task<void> runs its body to completion") {
    int n = 0;
    sync_wait(bump(n));
    CHECK(n == 1);
    auto twice = [](int& k) -> task<> {
        co_await bump(k);
        co_await bump(k);
    };
    sync_wait(twice(n));
    CHECK(n == 3);
}

TEST_CASE("task is lazy: the body runs only once awaited") {
    int n = 0;
    {
        auto t = bump(n);
        CHECK(n == 0);
        CHECK(t.valid());
        CHECK_FALSE(t.done());
    }
    CHECK(n == 0);  // destroyed without ever being awaited: never ran
    auto t = bump(n);
    CHECK(n == 0);
    sync_wait(std::move(t));
    CHECK(n == 1);
}

TEST_CASE("task is move-only and a moved-from task is empty") {
    static_assert(!std::is_copy_constructible_v<task<int>>);
    static_assert(!std::is_copy_assignable_v<task<int>>);
    static_assert(std::is_nothrow_move_constructible_v<task<int>>);
    static_assert(std::is_nothrow_move_assignable_v<task<int>>);
    static_assert(!std::is_copy_constructible_v<task<>>);

    auto a = answer();
    auto b = std::move(a);
    CHECK_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
    CHECK(b.valid());
    task<int> c;
    CHECK_FALSE(c.valid());
    c = std::move(b);
    CHECK(c.valid());
    CHECK_FALSE(b.valid());  // NOLINT(bugprone-use-after-move)
    CHECK(sync_wait(std::move(c)) == 42);
}

TEST_CASE("exceptions propagate across several levels of co_await") {
    bool reached = false;
    CHECK_THROWS_AS(sync_wait(level0(reached)), boom);
    CHECK_FALSE(reached);
    CHECK_THROWS_WITH(sync_wait(level1()), "from level 3");

    auto catcher = []() -> task<std::string> {
        try {
            (void)co_await level1();
        } catch (const boom& e) {
            co_return std::string("caught: ") + e.what();
        }
        co_return "not thrown";
    };
    CHECK(sync_wait(catcher()) == "caught: from level 3");
}

TEST_CASE("1,000,000 synchronous co_awaits of task<int> do not grow a 1 MiB stack") {
    constexpr int n = 1'000'000;
    int status = run_on_small_stack_in_child([] { return sync_wait(sum_sync(n)) == n; });
    INFO("child wait status " << status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("1,000,000 synchronous co_awaits of task<void> do not grow a 1 MiB stack") {
    constexpr int n = 1'000'000;
    int status = run_on_small_stack_in_child([] { return sync_wait(count_void_sync(n)) == n; });
    INFO("child wait status " << status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("a deep chain still does not grow the stack after a nested io_context came and went") {
    // A task on one loop runs a second, short-lived loop; after that loop is gone the
    // chain must still bounce through the first loop, never through the dead one.
    constexpr int n = 1'000'000;
    int status = run_on_small_stack_in_child([] {
        auto body = []() -> task<bool> {
            {
                io_context inner;
                if (inner.run_until(answer()) != 42) co_return false;
            }
            co_return co_await sum_sync(n) == n;
        };
        io_context outer;
        return outer.run_until(body());
    });
    INFO("child wait status " << status);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
