// cluster::errc and its std::error_category: the library's own expected failures.
// Kernel failures stay std::system_category codes; these name what the kernel cannot.
#pragma once

#include <string>
#include <system_error>
#include <type_traits>

namespace cluster {

enum class errc {
    eof = 1,                // the peer closed before a whole unit (frame, message) arrived
    truncated,              // a frame or field ends before its declared contents
    length_overflow,        // a declared length exceeds what the frame can hold
    invalid_enum,           // an enum value outside the described enumerators
    invalid_variant_index,  // a variant index outside the alternatives
    invalid_value,          // a value that cannot be represented (e.g. bool other than 0/1)
    too_deep,               // nesting beyond the decoder's depth limit
    trailing_bytes,         // bytes left over after the value was decoded
    unknown_type,           // a type id that is not part of the protocol
    schema_mismatch,        // same type name, different members: built from different code
    frame_too_large,        // a frame above the channel's size limit
    bad_frame,              // a frame header that does not check out
    missing_fd,             // a message refers to a file descriptor that did not arrive
    stray_fd,               // file descriptors arrived that no frame announced
    channel_closed,         // the channel was closed (by us, or after a protocol error)
    unexpected_type,        // a valid message, but not the type the receiver asked for
    peer_gone,              // the other process went away before answering
    listener_closed,        // a listener accepts no more: its worker is leaving, or it was closed
    forked_child,           // used in a process forked from the channel's owner, which is not that owner
    slot_gone,              // the slot was given up: scaled down, removed, or its worker not replaced
    cluster_stopping,       // the primary is stopping: no worker will be started or fed any more
    pool_closed,            // a job_pool takes no more jobs: it was closed
};

class error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "cluster"; }
    std::string message(int ev) const override {
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
        case errc::listener_closed: return "the listener accepts no more connections";
        case errc::forked_child: return "this process was forked from the channel's owner, and is not that owner";
        case errc::slot_gone: return "the slot was given up";
        case errc::cluster_stopping: return "the primary is stopping";
        case errc::pool_closed: return "the job pool was closed";
        }
        return "unknown cluster error";
    }
};

inline const std::error_category& cluster_category() noexcept {
    static const error_category category;
    return category;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), cluster_category()}; }

// errno as a std::error_code; io_uring reports failures as negative errno values.
inline std::error_code errno_code(int err) noexcept { return {err, std::system_category()}; }

}  // namespace cluster

template <>
struct std::is_error_code_enum<cluster::errc> : std::true_type {};
