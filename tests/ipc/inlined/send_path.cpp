// inlined: cluster::ipc::send_queue::queued
// inlined: cluster::wire::buffer::extend
// emitted: send_many
//
// What a channel's send() runs for every message is inline, down to the bytes: counting the
// frame in (send_queue::queued) was a call per message with both compilers, and making room
// for it (buffer::extend) one with g++ 12 wherever a program sends from more than one place.
// Only buffer::grow, which a send rarely needs, is out of line.
#include <cluster/ipc/channel.hpp>

#include <array>
#include <cstdint>
#include <string>

namespace probe {
struct sample {
    std::uint64_t id = 0;
    std::uint32_t kind = 0;
    double value = 0;
    std::string name;
    std::array<std::int32_t, 7> v{};
};
BOOST_DESCRIBE_STRUCT(sample, (), (id, kind, value, name, v))
}  // namespace probe

using proto = cluster::wire::protocol<probe::sample>;

cluster::io::task<void> send_many(cluster::ipc::channel<proto>& ch, probe::sample s, int n) {
    for (int i = 0; i < n; ++i) {
        s.id = static_cast<std::uint64_t>(i);
        auto sent = co_await ch.send(s);  // bound first: g++ 12 miscompiles `if (!co_await x)`
        if (!sent) co_return;
    }
}
