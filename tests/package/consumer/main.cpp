#include <cluster/cluster.hpp>

#include <cstdio>

cluster::task<int> answer();

int main() { std::printf("consumer: %d\n", cluster::sync_wait(answer())); }
