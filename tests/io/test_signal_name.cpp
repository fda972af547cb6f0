// Tests cluster/io/signal_name.hpp: the names exit descriptions and the primary's status use.
#include <catch2/catch.hpp>

#include <cluster/io/signal_name.hpp>

#include <signal.h>

using cluster::io::signal_name;

TEST_CASE("signal_name: a signal is named as users write it, and a number nothing names stays a number") {
    CHECK(signal_name(SIGHUP) == "SIGHUP");
    CHECK(signal_name(SIGTTOU) == "SIGTTOU");
    CHECK(signal_name(SIGKILL) == "SIGKILL");
    CHECK(signal_name(1000) == "signal 1000");
}
