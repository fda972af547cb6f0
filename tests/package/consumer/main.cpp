#include <cluster/cluster.hpp>

#include <chrono>
#include <cstdio>

cluster::task<int> answer() {
    co_await cluster::io::sleep_for(std::chrono::milliseconds(1));
    co_return 42;
}

int main() { std::printf("consumer: %d\n", cluster::sync_wait(answer())); }
