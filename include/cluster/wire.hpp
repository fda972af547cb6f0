// cluster/wire.hpp: the wire layer in one include — codec, protocol, frame header.
// Depends only on the runtime's unique_fd, errc and result; never on ipc or cluster.
#pragma once

#include <cluster/wire/buffer.hpp>
#include <cluster/wire/codec.hpp>
#include <cluster/wire/decode_error.hpp>
#include <cluster/wire/fingerprint.hpp>
#include <cluster/wire/frame.hpp>
#include <cluster/wire/protocol.hpp>
#include <cluster/wire/shared_bytes.hpp>
#include <cluster/wire/type_name.hpp>
