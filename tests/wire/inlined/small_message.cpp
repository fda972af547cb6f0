// inlined: cluster::wire::codec<probe::sample, void>::
// except: read_each
// emitted: send_one
// emitted: encode_into
// emitted: decode_one
// absent from receive_one: rep stos
//
// A small message is encoded and decoded with no call per struct: out of line, the writer
// and the reader live in memory, and every field goes through them there. g++ 12 left the
// encoder's fold over the members as a call once the message was encoded in two places (a
// channel's send and a buffer): encode and decode then cost three times a hand-written
// codec. Only read_each, which finds the field a short input cut, may be out of line.
// And a received message is built without zero-filling its optional first, as g++ 12 does
// for an empty std::optional of a variant (a rep stos of the largest message's size).
#include <cluster/ipc/channel.hpp>

#include <cstdint>
#include <span>

#include "../../support/probe_sample.hpp"  // by path: these build with the library's includes alone

cluster::io::task<void> send_one(cluster::ipc::channel<proto>& ch, const probe::sample& s) {
    (void)co_await ch.send(s);
}

cluster::io::task<std::uint64_t> receive_one(cluster::ipc::channel<proto>& ch) {
    auto m = co_await ch.receive();
    co_return m ? std::get<probe::sample>(*m).id : 0;
}

void encode_into(const probe::sample& s, cluster::wire::buffer& out) { cluster::wire::encode(s, out); }

std::uint64_t decode_one(std::span<const std::byte> bytes) {
    auto m = cluster::wire::decode<probe::sample>(bytes);
    return m ? m->id : 0;
}
