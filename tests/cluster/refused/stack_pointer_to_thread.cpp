// expect: a raw pointer cannot be sent: send an id or a std::string
// expect: cannot_send<tally,
// expect: &tally::total>
//
// A thread worker shares the primary's memory, so a message could carry a pointer into the
// sender's stack to it — and the receiver would read the sender's frame after it is gone.
// Messages to threads are moved, not encoded, but the types they may be are the codec's: the
// pointer is refused at compile time, named, as it is for a process.
#include <cluster/cluster.hpp>

#include <cstdint>

struct tally {
    std::uint64_t id = 0;
    std::uint64_t* total = nullptr;
};
BOOST_DESCRIBE_STRUCT(tally, (), (id, total))
using proto = cluster::protocol<tally>;

cluster::task<> add_mine(cluster::worker_handle<proto>& h) {
    std::uint64_t mine = 0;
    const tally t{1, &mine};
    auto sent = co_await h.send(t);
    (void)sent;
}

int main(int argc, char** argv) {
    cluster::primary_options o;
    o.mode = cluster::start_mode::thread;
    return cluster::run<proto>(
        argc, argv, [](cluster::primary<proto>&) -> cluster::task<> { co_return; },
        [](cluster::worker<proto>&) -> cluster::task<> { co_return; }, o);
}
