// cluster::wire::frame_header: the fixed 24 bytes before every payload on a channel,
// its validation, and encoding or decoding a whole frame of a protocol's message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <system_error>
#include <type_traits>

#include <cluster/error.hpp>
#include <cluster/result.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/buffer.hpp>
#include <cluster/wire/codec.hpp>
#include <cluster/wire/decode_error.hpp>
#include <cluster/wire/fingerprint.hpp>
#include <cluster/wire/protocol.hpp>
#include <cluster/wire/shared_bytes.hpp>

namespace cluster::wire {

// Laid out on the wire exactly as declared, in native byte order (both ends share a machine).
struct frame_header {
    std::uint32_t payload_size = 0;  // bytes after the header
    std::uint32_t type_id = 0;       // protocol<Ts...>::id<T>
    std::uint64_t fingerprint = 0;   // protocol<Ts...>::fingerprint<T>
    std::uint16_t fd_count = 0;      // descriptors attached to the frame with SCM_RIGHTS
    std::uint16_t flags = 0;         // frame_flags
    std::uint32_t tag = 0;           // request/response correlation; 0 = none

    friend bool operator==(const frame_header&, const frame_header&) = default;
};

inline constexpr std::size_t frame_header_size = 24;
static_assert(sizeof(frame_header) == frame_header_size && std::has_unique_object_representations_v<frame_header>,
              "frame_header must have no padding: it is copied to and from the wire as is");

struct frame_flags {
    static constexpr std::uint16_t request = 1;   // the peer is expected to answer with the same tag
    static constexpr std::uint16_t response = 2;  // answers the request with the same tag
    // The payload is not in the stream: it is the frame's last fd, a sealed memfd of
    // payload_size bytes (large messages travel without being copied through the socket).
    static constexpr std::uint16_t memfd = 4;
    // Between workers, through the primary: the tag names a worker, the one the frame is
    // for (worker to primary; all_workers for every other) or the one it is from.
    static constexpr std::uint16_t routed = 8;
    static constexpr std::uint16_t known = request | response | memfd | routed;
    static constexpr std::uint32_t all_workers = 0xffffffff;
};

// The kernel's SCM_MAX_FD: no more descriptors than this fit in one sendmsg.
inline constexpr std::uint16_t max_frame_fds = 253;

// The descriptors the message itself refers to: a memfd frame's last fd is its payload.
[[nodiscard]] constexpr std::uint16_t message_fd_count(const frame_header& h) noexcept {
    const bool has_memfd = (h.flags & frame_flags::memfd) != 0 && h.fd_count != 0;
    return static_cast<std::uint16_t>(h.fd_count - (has_memfd ? 1 : 0));
}

namespace detail {

// header_is_valid() for a frame with flags or fds.
[[nodiscard]] constexpr bool flagged_header_is_valid(const frame_header& h) noexcept {
    constexpr std::uint16_t exchange = frame_flags::request | frame_flags::response;
    const bool reserved_flags = (h.flags & ~frame_flags::known) != 0;
    const bool both_directions = (h.flags & exchange) == exchange;
    const bool untagged_exchange = (h.flags & exchange) != 0 && h.tag == 0;
    const bool misrouted = (h.flags & frame_flags::routed) != 0 && ((h.flags & exchange) != 0 || h.tag == 0);
    const bool memfd_missing = (h.flags & frame_flags::memfd) != 0 && h.fd_count == 0;
    // Every descriptor the message refers to costs a 4-byte index in the payload.
    const bool fds_without_room = std::uint64_t{message_fd_count(h)} * sizeof(std::uint32_t) > h.payload_size;
    return !reserved_flags && !both_directions && !untagged_exchange && !misrouted && !memfd_missing &&
           h.fd_count <= max_frame_fds && !fds_without_room;
}

}  // namespace detail

// Whether h describes a possible frame. The payload size limit is the channel's to
// enforce (as frame_too_large), not the header's. Nothing can fail without flags or fds:
// the common frame is waved through here, small enough to inline (a call per message).
[[gnu::always_inline]] [[nodiscard]] constexpr bool header_is_valid(const frame_header& h) noexcept {
    return (h.flags | h.fd_count) == 0 || detail::flagged_header_is_valid(h);
}

// A header where it lies in a receive buffer, read a field at a time: copied out whole, it
// goes through the stack, and the fields read back from there stall on store forwarding.
class header_view {
public:
    explicit header_view(const std::byte* at) noexcept : at_(at) {}
    [[nodiscard]] std::uint32_t payload_size() const noexcept {
        return get<std::uint32_t>(offsetof(frame_header, payload_size));
    }
    [[nodiscard]] std::uint32_t type_id() const noexcept { return get<std::uint32_t>(offsetof(frame_header, type_id)); }
    [[nodiscard]] std::uint64_t fingerprint() const noexcept {
        return get<std::uint64_t>(offsetof(frame_header, fingerprint));
    }
    [[nodiscard]] std::uint16_t fd_count() const noexcept {
        return get<std::uint16_t>(offsetof(frame_header, fd_count));
    }
    [[nodiscard]] std::uint16_t flags() const noexcept { return get<std::uint16_t>(offsetof(frame_header, flags)); }
    [[nodiscard]] std::uint32_t tag() const noexcept { return get<std::uint32_t>(offsetof(frame_header, tag)); }
    [[nodiscard]] frame_header whole() const noexcept {
        frame_header h;
        std::memcpy(&h, at_, frame_header_size);
        return h;
    }

private:
    template <class T>
    [[nodiscard]] T get(std::size_t offset) const noexcept {
        T v;
        std::memcpy(&v, at_ + offset, sizeof v);
        return v;
    }
    const std::byte* at_;
};

// Field by field, the same bytes as one copy of h: h has usually just been assembled, and
// one wide load of it stalls on store forwarding (half of a small frame's encode time).
inline void encode_header(const frame_header& h, std::span<std::byte, frame_header_size> out) noexcept {
    auto put = [&](std::size_t offset, const auto& field) { std::memcpy(out.data() + offset, &field, sizeof field); };
    put(offsetof(frame_header, payload_size), h.payload_size);
    put(offsetof(frame_header, type_id), h.type_id);
    put(offsetof(frame_header, fingerprint), h.fingerprint);
    put(offsetof(frame_header, fd_count), h.fd_count);
    put(offsetof(frame_header, flags), h.flags);
    put(offsetof(frame_header, tag), h.tag);
}

// Reads the header from the first frame_header_size bytes: truncated if there are fewer,
// bad_frame if they do not describe a possible frame.
[[nodiscard]] inline result<frame_header> parse_header(std::span<const std::byte> bytes) noexcept {
    if (bytes.size() < frame_header_size) return make_error_code(errc::truncated);
    frame_header h;
    std::memcpy(&h, bytes.data(), frame_header_size);
    if (!header_is_valid(h)) return make_error_code(errc::bad_frame);
    return h;
}

namespace detail {

[[noreturn]] inline void throw_above_4gib() {
    throw std::system_error(make_error_code(errc::frame_too_large), "cluster::wire: message above 4 GiB");
}

[[noreturn]] inline void throw_invalid_frame() {
    throw std::system_error(make_error_code(errc::bad_frame),
                            "cluster::wire: frame flags, tag or fd count (at most 253) are invalid");
}

// encode_frame(), for a caller that has sized the payload already (payload_size is
// encoded_size(msg)) and collects the fds itself: into fds, which may be null for a
// message that cannot carry any. A message's id and fingerprint are its own, whatever
// protocol it is sent in: the encoders need no protocol, only the callers that check one.
template <class T>
void encode_frame_to(buffer& out, const T& msg, std::size_t payload_size, std::uint32_t tag, std::uint16_t flags,
                     gather_list* gather, fd_list* fds) {
    if (payload_size > std::numeric_limits<std::uint32_t>::max()) throw_above_4gib();
    const std::size_t start = out.size();
    const std::size_t fds_before = fds ? fds->size() : 0;
    std::byte* frame = out.extend(frame_header_size + payload_size);
    writer w{frame + frame_header_size, fds, gather};
    const std::size_t runs_before = gather ? gather->runs.size() : 0;
    const std::size_t total_before = gather ? gather->total : 0;
    if (gather) gather->base = out.data();
    codec<T>::write(w, msg);
    out.truncate(static_cast<std::size_t>(w.pos - out.data()));
    const std::size_t fd_count = fds ? fds->size() - fds_before : 0;
    const frame_header h{static_cast<std::uint32_t>(payload_size), type_id<T>, fingerprint<T>,
                         static_cast<std::uint16_t>(fd_count),     flags,      tag};
    if (fd_count > max_frame_fds || (flags & frame_flags::memfd) != 0 || !header_is_valid(h)) {
        out.truncate(start);
        if (gather) {
            gather->runs.resize(runs_before);
            gather->total = total_before;
        }
        if (fds) fds->resize(fds_before);
        throw_invalid_frame();
    }
    encode_header(h, std::span<std::byte, frame_header_size>(frame, frame_header_size));
}

// encode_frame_to() for a message that can carry no fds, and so no shared_bytes either (a
// shared_bytes may be a memfd): no fds to count, no runs to gather, and a header known
// before the payload, so an invalid one is refused before anything is written. Inline:
// a channel's send() runs it for every message.
template <class T>
    requires(!carries_fds<T>)
[[gnu::always_inline]] inline void encode_plain_frame_to(buffer& out, const T& msg, std::size_t payload_size,
                                                         std::uint32_t tag, std::uint16_t flags) {
    if (payload_size > std::numeric_limits<std::uint32_t>::max()) throw_above_4gib();
    const frame_header h{static_cast<std::uint32_t>(payload_size), type_id<T>, fingerprint<T>, 0, flags, tag};
    if ((flags & frame_flags::memfd) != 0 || !header_is_valid(h)) throw_invalid_frame();
    std::byte* frame = out.extend(frame_header_size + payload_size);
    encode_header(h, std::span<std::byte, frame_header_size>(frame, frame_header_size));
    writer w{frame + frame_header_size, nullptr};
    codec<T>::write(w, msg);
}

}  // namespace detail

// Appends header + payload of msg to out (frames batch up in one buffer) and returns the
// raw fds to attach to this frame; they are borrowed from msg, which must outlive the send.
// A frame that could not be valid (bad flags, too many fds, payload over 4 GiB) is a
// programming error: it throws std::system_error and leaves out as it was. The payload is
// written inline, so frame_flags::memfd is refused here too. With gather, large
// shared_bytes may be left out of out and listed there instead (offsets into out), to be
// sent by reference: out then holds frame_header_size + payload_size - gather->total bytes.
template <class P, class T>
    requires message_of<T, P>
fd_list encode_frame(buffer& out, const T& msg, std::uint32_t tag = 0, std::uint16_t flags = 0,
                     gather_list* gather = nullptr) {
    fd_list fds;
    detail::encode_frame_to(out, msg, encoded_size(msg), tag, flags, gather, &fds);
    return fds;
}

namespace detail {

// Why a frame's payload and fds cannot be decoded at all, or errc{} if they may be.
[[nodiscard]] constexpr errc frame_mismatch(const frame_header& h, std::span<const std::byte> payload,
                                            std::span<unique_fd> fds) noexcept {
    if (payload.size() != h.payload_size) return errc::truncated;
    if (fds.size() < message_fd_count(h)) return errc::missing_fd;
    return {};
}

}  // namespace detail

// Decodes a frame's payload (exactly h.payload_size bytes, wherever it was read from) with
// the fds the message refers to (a memfd frame's payload fd excluded). owner, when given,
// holds payload's bytes, and decoded shared_bytes may share them (see wire::decode).
template <class P>
[[nodiscard]] decode_result<typename P::variant> decode_frame(const frame_header& h, std::span<const std::byte> payload,
                                                              std::span<unique_fd> fds,
                                                              const shared_bytes* owner = nullptr) {
    if (const errc e = detail::frame_mismatch(h, payload, fds); e != errc{})
        return decode_result<typename P::variant>(boost::system::in_place_error, decode_error{make_error_code(e), {}});
    return P::decode(h.type_id, h.fingerprint, payload, fds.first(message_fd_count(h)), owner);
}

// decode_frame() into the optional returned, where the message is built in place (see
// protocol::decode_in_place). Empty on failure, with error set. Inline: a channel runs it
// for every message it receives.
template <class P>
[[gnu::always_inline]] [[nodiscard]] inline std::optional<typename P::variant>
decode_frame_in_place(const frame_header& h, std::span<const std::byte> payload, std::span<unique_fd> fds,
                      const shared_bytes* owner, std::optional<decode_error>& error) {
    if (const errc e = detail::frame_mismatch(h, payload, fds); e != errc{}) {
        error = decode_error{make_error_code(e), {}};
        return std::nullopt;
    }
    detail::reader r(payload, fds.first(message_fd_count(h)));
    r.owner = owner;
    return P::decode_in_place(h.type_id, h.fingerprint, r, error);
}

// decode_frame_in_place() for a plain frame (no fds) whose header and payload lie at
// `frame`: nothing left to check against the header, which its reader has checked. A
// failure is handed to on_error(decode_error&&), so that success builds no error to test.
template <class P, class OnError>
[[gnu::always_inline]] [[nodiscard]] inline std::optional<typename P::variant>
decode_plain_frame_in_place(const std::byte* frame, OnError on_error) {
    const header_view h(frame);
    detail::reader r(std::span<const std::byte>(frame + frame_header_size, h.payload_size()), {});
    auto out = P::decode_in_place(h.type_id(), h.fingerprint(), r);
    if (!out) on_error(r.take_error());
    return out;
}

}  // namespace cluster::wire
