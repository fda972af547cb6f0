// inlined: cluster::ipc::send_queue::queued
// inlined: cluster::wire::buffer::extend
// emitted: send_many
//
// What a channel's send() runs for every message is inline, down to the bytes: counting the
// frame in (send_queue::queued) was a call per message with both compilers, and making room
// for it (buffer::extend) one with g++ 12 wherever a program sends from more than one place.
// Only buffer::grow, which a send rarely needs, is out of line.
#include <cluster/ipc/channel.hpp>

#include <cstdint>

#include "../../support/probe_sample.hpp"  // by path: these build with the library's includes alone

cluster::io::task<void> send_many(cluster::ipc::channel<proto>& ch, probe::sample s, int n) {
    for (int i = 0; i < n; ++i) {
        s.id = static_cast<std::uint64_t>(i);
        auto sent = co_await ch.send(s);  // bound first: g++ 12 miscompiles `if (!co_await x)`
        if (!sent) co_return;
    }
}
