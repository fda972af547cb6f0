// cluster::wire::protocol<Ts...>: the message types a channel
// carries, their type ids and fingerprints, and decoding a (type id, payload) to one of them.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <boost/mp11/algorithm.hpp>
#include <boost/mp11/list.hpp>

#include <cluster/error.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/codec.hpp>
#include <cluster/wire/decode_error.hpp>
#include <cluster/wire/fingerprint.hpp>
#include <cluster/wire/raw_message.hpp>
#include <cluster/wire/sendable.hpp>
#include <cluster/wire/type_name.hpp>

namespace cluster::wire {

// Whether no two of Ts share a type id: a protocol could not tell them apart on the wire.
template <class... Ts>
inline constexpr bool distinct_type_ids = [] {
    const std::array<std::uint32_t, sizeof...(Ts)> ids{type_id<Ts>...};
    for (std::size_t i = 0; i < ids.size(); ++i)
        for (std::size_t j = i + 1; j < ids.size(); ++j)
            if (ids[i] == ids[j]) return false;
    return true;
}();

// detail::checked<T>: one error naming what T's codec cannot send, if anything; a
// raw_message is never sent, only received.
template <class T>
inline constexpr bool checked_message = detail::checked<T>;
template <>
inline constexpr bool checked_message<raw_message> = true;

template <class... Ts>
class protocol {
    // Each message the codec cannot encode is one error, naming the part it cannot; what
    // that part prevents (a default constructor, decoding) is not another.
    static_assert((checked_message<Ts> && ...));
    static_assert((... && (!sendable<Ts> || std::is_default_constructible_v<Ts>)),
                  "cluster::protocol: message types must be default-constructible to be decoded");

    template <std::size_t I>
    using type_at = boost::mp11::mp_at_c<boost::mp11::mp_list<Ts...>, I>;
    // Open: raw_message, listed last, takes the frames of every type not listed before it.
    static constexpr bool is_open = [] {
        if constexpr (sizeof...(Ts) == 0)
            return false;
        else
            return std::is_same_v<type_at<sizeof...(Ts) - 1>, raw_message>;
    }();
    static constexpr std::size_t known = sizeof...(Ts) - (is_open ? 1 : 0);  // the types decoded here
    static constexpr auto ids = [] {
        return []<std::size_t... I>(std::index_sequence<I...>) {
            return std::array<std::uint32_t, known>{type_id<type_at<I>>...};
        }(std::make_index_sequence<known>{});
    }();
    static constexpr auto fingerprints = [] {
        return []<std::size_t... I>(std::index_sequence<I...>) {
            return std::array<std::uint64_t, known>{wire::fingerprint<type_at<I>>...};
        }(std::make_index_sequence<known>{});
    }();

    static_assert(distinct_type_ids<Ts...>,
                  "cluster::protocol: two message types share a type id (a type listed twice, two types "
                  "with the same name, or a hash collision); give one a distinct cluster_name");

public:
    // Any one of the protocol's messages. An empty protocol has none to hold, and no message
    // of it ever arrives: std::monostate keeps the type usable.
    using variant = std::conditional_t<sizeof...(Ts) == 0, std::variant<std::monostate>, std::variant<Ts...>>;
    static constexpr std::size_t size = sizeof...(Ts);

    template <class T>
    static constexpr bool contains = (std::is_same_v<T, Ts> || ...);

    // Whether a frame of a type not listed arrives as a raw_message (see raw_message).
    static constexpr bool open = is_open;

    template <class T>
        requires contains<T>
    static constexpr std::uint32_t id = type_id<T>;

    template <class T>
        requires contains<T>
    static constexpr std::uint64_t fingerprint = wire::fingerprint<T>;

    template <class T>
        requires contains<T>
    static constexpr std::string_view name = type_name<T>();

    // Decodes one message that arrived as (type_id, fingerprint, payload, fds). Errors say
    // what was wrong: unknown_type, schema_mismatch naming the type, or a field path.
    // owner, when given, holds payload's bytes (see wire::decode).
    [[nodiscard]] static decode_result<variant> decode(std::uint32_t type_id, std::uint64_t fingerprint,
                                                       std::span<const std::byte> payload,
                                                       std::span<unique_fd> fds = {},
                                                       const shared_bytes* owner = nullptr) {
        const std::size_t index = index_of(type_id);
        if (index == known) {
            if constexpr (open) {
                detail::reader r(payload, fds);
                r.owner = owner;
                return decode_result<variant>(boost::system::in_place_value, std::in_place_type<raw_message>,
                                              raw_message::take(type_id, fingerprint, r));
            }
            return unknown(type_id);
        }
        if constexpr (known == 0) {
            return unknown(type_id);
        } else {
            return boost::mp11::mp_with_index<known>(
                index, [&](auto i) { return decode_as<type_at<i>>(fingerprint, payload, fds, owner); });
        }
    }

    // decode(), for a receiver that hands the message out in an optional: the message is
    // built in the optional returned, and never moved. Empty on failure, with error set.
    [[nodiscard]] static std::optional<variant> decode_in_place(std::uint32_t type_id, std::uint64_t fingerprint,
                                                                std::span<const std::byte> payload,
                                                                std::span<unique_fd> fds, const shared_bytes* owner,
                                                                std::optional<decode_error>& error) {
        detail::reader r(payload, fds);
        r.owner = owner;
        return decode_in_place(type_id, fingerprint, r, error);
    }

    // The same from a reader over the payload: one reference instead of the payload, fds
    // and owner, which as arguments spill to the stack and stall on store forwarding.
    // The optional returned is built holding a fresh message of the type the frame names,
    // which is then decoded in place: no move of the message, and no empty optional built
    // first, which g++ 12 zero-fills whole (a rep stos the size of the largest message) for
    // every message received. Inline, like the rest of a channel's receive path.
    [[gnu::always_inline]] [[nodiscard]] static std::optional<variant>
    decode_in_place(std::uint32_t type_id, std::uint64_t fingerprint, detail::reader& r,
                    std::optional<decode_error>& error) {
        auto out = decode_in_place(type_id, fingerprint, r);
        if (!out) error = r.take_error();
        return out;
    }

    // The same with the failure left in r (r.error, and r.path rooted at the message): a
    // receiver then builds no optional<decode_error> to test and destroy for each message.
    [[gnu::always_inline]] [[nodiscard]] static std::optional<variant>
    decode_in_place(std::uint32_t type_id, std::uint64_t fingerprint, detail::reader& r) {
        return decode_from<0>(type_id, fingerprint, r);
    }

private:
    static constexpr std::size_t index_of(std::uint32_t type_id) noexcept {
        std::size_t i = 0;
        while (i < known && ids[i] != type_id) ++i;
        return i;
    }

    static decode_result<variant> fail(errc code, std::string path) {
        return decode_result<variant>(boost::system::in_place_error,
                                      decode_error{make_error_code(code), std::move(path)});
    }

    static decode_result<variant> unknown(std::uint32_t type_id) {
        return fail(errc::unknown_type, unknown_path(type_id));
    }
    static std::string unknown_path(std::uint32_t type_id) {
        char hex[8];
        auto end = std::to_chars(hex, hex + sizeof hex, type_id, 16).ptr;
        return "type id 0x" + std::string(hex, end);
    }

    template <class T>
    static decode_result<variant> mismatch() {
        return fail(errc::schema_mismatch, std::string(type_name<T>()));
    }

    // The type id's message if it is the I-th type or one after it. Every return is of a
    // prvalue, so the optional is the caller's: none is moved. (An empty protocol uses none
    // of the arguments.)
    template <std::size_t I>
    [[gnu::always_inline]] static std::optional<variant>
    decode_from(std::uint32_t type_id, [[maybe_unused]] std::uint64_t fingerprint, detail::reader& r) {
        if constexpr (I == known) {
            return decode_unknown(type_id, fingerprint, r);
        } else {
            if (ids[I] == type_id) return decode_alternative<I>(fingerprint, r);
            return decode_from<I + 1>(type_id, fingerprint, r);
        }
    }

    // A type the protocol does not list: a raw_message if it is open, else an error.
    [[gnu::cold]] static std::optional<variant>
    decode_unknown(std::uint32_t type_id, [[maybe_unused]] std::uint64_t fingerprint, detail::reader& r) {
        if constexpr (open) {
            return std::optional<variant>(std::in_place, std::in_place_index<known>,
                                          raw_message::take(type_id, fingerprint, r));
        } else {
            r.fail(errc::unknown_type, unknown_path(type_id));
            return std::nullopt;
        }
    }

    // A message with a part the codec cannot encode does not compile (detail::checked),
    // and may have no default constructor: the decoders are declared only for it, so that
    // nothing more is said.
    template <std::size_t I>
    static std::optional<variant> decode_alternative(std::uint64_t fingerprint, detail::reader& r);
    template <std::size_t I>
        requires sendable<type_at<I>>
    [[gnu::always_inline]] static std::optional<variant> decode_alternative(std::uint64_t fingerprint,
                                                                            detail::reader& r) {
        if (fingerprint != fingerprints[I]) return mismatched<type_at<I>>(r);
        return decode_fresh<I>(r);
    }
    template <class T>
    [[gnu::cold]] static std::optional<variant> mismatched(detail::reader& r) {
        r.fail(errc::schema_mismatch, std::string(type_name<T>()));
        return std::nullopt;
    }
    // One named result and one return, for NRVO with g++ 12 (see wire::decode).
    template <std::size_t I>
    [[gnu::always_inline]] static std::optional<variant> decode_fresh(detail::reader& r) {
        auto out = detail::make_fresh<type_at<I>>(
            [](auto... fresh) { return std::optional<variant>(std::in_place, std::in_place_index<I>, fresh...); });
        if (!detail::decode_into(*std::get_if<I>(&*out), r)) out.reset();
        return out;
    }

    // Decoded in place in the result: no move of the message.
    template <class T>
    static decode_result<variant> decode_as(std::uint64_t fingerprint, std::span<const std::byte> payload,
                                            std::span<unique_fd> fds, const shared_bytes* owner);
    template <class T>
        requires sendable<T>
    static decode_result<variant> decode_as(std::uint64_t fingerprint, std::span<const std::byte> payload,
                                            std::span<unique_fd> fds, const shared_bytes* owner) {
        if (fingerprint != wire::fingerprint<T>) return mismatch<T>();
        auto out = detail::make_fresh<T>([](auto... fresh) {
            return decode_result<variant>(boost::system::in_place_value, std::in_place_type<T>, fresh...);
        });
        if (auto error = wire::decode_into(*std::get_if<T>(&*out), payload, fds, owner))
            out = decode_result<variant>(boost::system::in_place_error, std::move(*error));
        return out;
    }
};

// A raw_message decoded as one of P's messages, with the checks a frame gets on arrival;
// the message takes the fds it refers to.
template <class P>
[[nodiscard]] decode_result<typename P::variant> decode_raw(raw_message& m) {
    return P::decode(m.type_id, m.fingerprint, std::span<const std::byte>(m.payload.data(), m.payload.size()), m.fds,
                     &m.payload);
}

// Satisfied when T is one of P's message types, or any message at all for an open protocol
// (not raw_message itself, which is only ever received): what send() functions constrain on.
template <class T, class P>
concept message_of = P::template contains<T> || (P::open && !std::is_same_v<T, raw_message>);

}  // namespace cluster::wire
