// cluster::errc and its std::error_category: the library's own expected failures.
// Kernel failures stay std::system_category codes; these name what the kernel cannot.
#pragma once

#include <cluster/config.hpp>

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
    listener_closed,        // what listen() gave takes no more: its worker is leaving, or it was closed
    forked_child,           // used in a process forked from the channel's owner, which is not that owner
    slot_gone,              // the slot was given up: scaled down, removed, or its worker not replaced
    cluster_stopping,       // the primary is stopping: no worker will be started or fed any more
    pool_closed,            // a job_pool takes no more jobs: it was closed
    datagram_truncated,     // a datagram longer than the buffer it was received into: the rest is lost
};

class error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "cluster"; }
    CLUSTER_DECL std::string message(int ev) const override;
};

namespace detail {

// The category, constant-initialised and never destroyed, as libstdc++ keeps its own: a
// function's static would cost every use a call and a guard test (a channel's send makes
// an error_code per message), and a destroyed one would fail codes still used by other
// statics' destructors.
union category_instance {
    error_category category;
    constexpr category_instance() noexcept : category() {}
    ~category_instance() {}
};
inline constinit const category_instance category_storage;

}  // namespace detail

inline const std::error_category& cluster_category() noexcept { return detail::category_storage.category; }

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), cluster_category()}; }

// errno as a std::error_code; io_uring reports failures as negative errno values.
inline std::error_code errno_code(int err) noexcept { return {err, std::system_category()}; }

}  // namespace cluster

template <>
struct std::is_error_code_enum<cluster::errc> : std::true_type {};

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/impl/error.ipp>
#endif
