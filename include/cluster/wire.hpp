// The wire layer in one include — codec, protocol, frame header, shared_bytes — and its
// everyday names in namespace cluster. It depends only on the base types, never on io.
#pragma once

#include <cluster/wire/buffer.hpp>
#include <cluster/wire/codec.hpp>
#include <cluster/wire/decode_error.hpp>
#include <cluster/wire/fingerprint.hpp>
#include <cluster/wire/frame.hpp>
#include <cluster/wire/protocol.hpp>
#include <cluster/wire/shared_bytes.hpp>
#include <cluster/wire/type_name.hpp>

namespace cluster {
using wire::protocol;
using wire::shared_bytes;
}  // namespace cluster
