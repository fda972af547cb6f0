// cluster::error_category's definitions: what each of the library's error codes says. Inline
// in a header-only build; compiled once into cluster::core otherwise.
#pragma once

#include <cluster/error.hpp>

namespace cluster {

CLUSTER_DECL std::string error_category::message(int ev) const {
    switch (static_cast<errc>(ev)) {
    case errc::eof: return "end of stream before a complete unit";
    case errc::truncated: return "truncated";
    case errc::length_overflow: return "length exceeds the frame";
    case errc::invalid_enum: return "invalid enum value";
    case errc::invalid_variant_index: return "invalid variant index";
    case errc::invalid_value: return "invalid value";
    case errc::too_deep: return "nesting too deep";
    case errc::trailing_bytes: return "trailing bytes after the value";
    case errc::unknown_type: return "unknown message type";
    case errc::schema_mismatch: return "schema fingerprint mismatch (peer built from different code)";
    case errc::frame_too_large: return "frame above the size limit";
    case errc::bad_frame: return "malformed frame header";
    case errc::missing_fd: return "file descriptor missing from the message";
    case errc::stray_fd: return "file descriptors not announced by any frame";
    case errc::channel_closed: return "channel closed";
    case errc::unexpected_type: return "unexpected message type";
    case errc::peer_gone: return "the peer went away before answering";
    case errc::listener_closed: return "the listener takes no more (its worker is leaving, or it was closed)";
    case errc::forked_child: return "this process was forked from the channel's owner, and is not that owner";
    case errc::slot_gone: return "the slot was given up";
    case errc::cluster_stopping: return "the primary is stopping";
    case errc::pool_closed: return "the job pool was closed";
    case errc::datagram_truncated: return "the datagram was longer than the buffer: the rest of it is lost";
    }
    return "unknown cluster error";
}

}  // namespace cluster
