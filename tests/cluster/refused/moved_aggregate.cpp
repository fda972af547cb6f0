// refused by: GNU before 14
// expect: cluster: GCC 12 destroys a braced temporary twice when it is inside co_await
// expect: pass cluster::hand_over(j) rather than std::move(j)
// expect: moved_aggregate.cpp:29:
//
// A named message given away with std::move: safe, but under GCC 12 and 13 the library
// cannot tell it from a braced temporary of the same aggregate, and refuses it with the
// one error that names hand_over(), which gives it away the same and compiles everywhere.
// clang compiles it as written.
#include <cluster/cluster.hpp>

#include <cstdint>
#include <string>
#include <utility>

struct job {
    std::uint64_t id = 0;
    std::string text;
    cluster::unique_fd fd;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, text, fd))
using proto = cluster::protocol<job>;

cluster::task<> give(cluster::worker_handle<proto>& h, cluster::unique_fd fd) {
    job j{1, "text", std::move(fd)};
    auto kept = co_await h.send(cluster::hand_over(j));
    (void)kept;
    job k{2, "text", {}};
    auto sent = co_await h.send(std::move(k));
    (void)sent;
}
