// A program built against an installed cluster::redis: it formats a command through hiredis
// and fails cleanly to connect where nothing listens (a Unix socket path that does not exist).
#include <cluster/io.hpp>
#include <cluster/redis.hpp>

#include <cstdio>

cluster::task<int> run() {
    cluster::redis::options o;
    o.server = cluster::net::endpoint::unix_socket("/nonexistent/redis.sock");
    cluster::redis::client c(o);
    auto up = co_await c.connect();
    co_await c.close();
    co_return up ? 1 : 0;
}

int main() {
    const int failed = cluster::sync_wait(run());
    std::printf("redis consumer: %s\n", failed ? "connected to nothing?" : "refused cleanly");
    return failed;
}
