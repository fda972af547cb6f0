// The consumer's second file: both include the whole library header-only, so a function
// a header defines without `inline` would be defined twice and the link would fail.
#include <cluster/cluster.hpp>

#include <chrono>

cluster::task<int> answer() {
    co_await cluster::io::sleep_for(std::chrono::milliseconds(1));
    co_return 42;
}
