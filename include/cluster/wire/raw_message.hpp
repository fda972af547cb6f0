// cluster::wire::raw_message: a message a channel received but did not decode — its type id,
// fingerprint, payload and fds — for a protocol that lets through the types it does not list.
#pragma once

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include <cluster/unique_fd.hpp>
#include <cluster/wire/codec.hpp>
#include <cluster/wire/shared_bytes.hpp>

namespace cluster::wire {

// Listed last in a protocol, it makes the protocol open: a frame of a type the protocol does
// not list arrives as a raw_message instead of being refused, for a layer above that knows
// the type to decode (wire::decode_raw). It is never sent as such.
struct raw_message {
    std::uint32_t type_id = 0;
    std::uint64_t fingerprint = 0;
    shared_bytes payload;  // shares the frame's buffer when the payload is most of it, else a copy
    std::vector<unique_fd> fds;

    // The rest of r's payload, and the fds it was given, from a frame of type_id.
    static raw_message take(std::uint32_t type_id, std::uint64_t fingerprint, detail::reader& r) {
        raw_message m{type_id, fingerprint, detail::bytes_access::share_or_copy(r.owner, {r.pos, r.remaining()}), {}};
        r.pos = r.end;
        m.fds.reserve(r.fds.size());
        for (auto& fd : r.fds) m.fds.push_back(std::move(fd));
        return m;
    }
};

}  // namespace cluster::wire
