// process_usage: CPU seconds read from /proc/<pid>/stat whatever the command's name holds,
// this process's own usage, and a process that is gone.
#include <catch2/catch.hpp>

#include <cluster/detail/process_usage.hpp>

#include <unistd.h>

#include <string>

using cluster::detail::cpu_seconds_in_stat;
using cluster::detail::usage_of;

TEST_CASE("process usage: utime and stime are counted from the last parenthesis, in clock ticks") {
    const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const std::string stat = "4242 (odd) (name 1) S 1 4242 4242 0 -1 4194560 120 0 0 0 250 50 0 0 20 0 1 0 "
                             "100 12345 67 18446744073709551615\n";
    auto cpu = cpu_seconds_in_stat(stat);
    REQUIRE(cpu.has_value());
    CHECK(*cpu == Approx(300 / tick));
    CHECK_FALSE(cpu_seconds_in_stat("no parenthesis here").has_value());
    CHECK_FALSE(cpu_seconds_in_stat("1 (short) S 1 2 3").has_value());
}

TEST_CASE("process usage: this process uses memory and some CPU, and a pid that is gone is an error") {
    auto own = usage_of(::getpid());
    REQUIRE(own.has_value());
    CHECK(own->rss_bytes > 0);
    CHECK(own->cpu_seconds >= 0);
    CHECK_FALSE(usage_of(0x3ffffff0).has_value());
}
