// cluster::wire codec: encoded_size, encode and decode for described types and the std
// vocabulary types built from them, plus each type's canonical spelling for fingerprints.
#pragma once

// Wire format (both peers run on one machine, so scalars are in native byte order and
// native size; nothing here is meant for a network or for files):
//   arithmetic, enum     its object bytes (enums as their underlying type)
//   bool, optional flag  one byte, exactly 0 or 1
//   string, vector, map  u32 count, then the chars / elements / key-value pairs
//   array<T, N>          N elements, no count
//   variant              u8 alternative index, then the alternative
//   described struct     its public bases' fields, then its own members, in order
//   duration             its count() as Rep
//   unique_fd            u32 index into the frame's SCM_RIGHTS fds (0xffffffff = empty)
// Runs of non-bool arithmetic values are copied with one memcpy.

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <boost/describe/bases.hpp>
#include <boost/describe/class.hpp>  // users describe their messages with these macros
#include <boost/describe/enum.hpp>
#include <boost/describe/enumerators.hpp>
#include <boost/describe/members.hpp>
#include <boost/describe/modifiers.hpp>
#include <boost/mp11/algorithm.hpp>

#include <cluster/error.hpp>
#include <cluster/unique_fd.hpp>
#include <cluster/wire/buffer.hpp>
#include <cluster/wire/decode_error.hpp>
#include <cluster/wire/sendable.hpp>
#include <cluster/wire/type_name.hpp>

namespace cluster::wire {

class shared_bytes;  // cluster/wire/shared_bytes.hpp

// Runs of bytes an encoder may leave out of its output and have sent by reference
// (writev-style); defined with shared_bytes, the only codec that uses it.
struct gather_list;

// Raw fd numbers the encoder found, in index order, to attach with SCM_RIGHTS. They are
// borrowed from the message, which must outlive the send.
using fd_list = std::vector<int>;

// What stands in a received frame's fds for one the kernel could not give the receiver (it
// was at its descriptor limit): the field it fills decodes as no fd, where an fd that is
// missing or taken twice is an error. Never a descriptor, and never closed.
inline constexpr int lost_fd = -2;

// Without recursive types, only a hostile or corrupt frame could nest deeper than this.
inline constexpr unsigned max_depth = 64;

namespace detail {

inline constexpr std::uint32_t no_fd = 0xffffffffu;

struct writer {
    std::byte* pos;
    fd_list* fds;
    gather_list* gather = nullptr;  // set: shared_bytes may leave its bytes out (see gather_list)

    void put(const void* from, std::size_t n) noexcept {
        std::memcpy(pos, from, n);
        pos += n;
    }
    // memcpy from a null pointer is undefined even for zero bytes, and empty vectors have
    // one: put_short() copies nothing then.
    void put_run(const void* from, std::size_t n) noexcept {
        if (n <= 16) return put_short(static_cast<const std::byte*>(from), n);
        put(from, n);
    }
    // A short run (a name, a key) in two overlapping fixed-size copies, inline: memcpy of
    // a size not known at compile time is a call, costing more than the copy.
    void put_short(const std::byte* from, std::size_t n) noexcept {
        if (n >= 8) {
            std::memcpy(pos, from, 8);
            std::memcpy(pos + n - 8, from + n - 8, 8);
        } else if (n >= 4) {
            std::memcpy(pos, from, 4);
            std::memcpy(pos + n - 4, from + n - 4, 4);
        } else if (n >= 2) {
            std::memcpy(pos, from, 2);
            std::memcpy(pos + n - 2, from + n - 2, 2);
        } else if (n == 1) {
            *pos = *from;
        }
        pos += n;
    }
    template <class U>
    void put_value(U value) noexcept {
        put(&value, sizeof value);
    }
};

struct reader {
    reader(std::span<const std::byte> in, std::span<unique_fd> received) noexcept
        : pos(in.data()), end(in.data() + in.size()), fds(received) {}

    const std::byte* pos;
    const std::byte* end;
    std::span<unique_fd> fds;
    unsigned depth = 0;
    errc error{};
    std::string path;                     // written only on failure, innermost segment first
    const shared_bytes* owner = nullptr;  // set: keeps the input alive, shared_bytes may alias it

    [[nodiscard]] std::size_t remaining() const noexcept { return static_cast<std::size_t>(end - pos); }
    bool fail(errc e) noexcept {
        error = e;
        return false;
    }
    // Fails with a path of its own, for a failure found before any field is read.
    [[gnu::cold]] bool fail(errc e, std::string where) {
        path = std::move(where);
        return fail(e);
    }
    // What failed, once something has: the error, and its path.
    [[nodiscard]] decode_error take_error() { return decode_error{make_error_code(error), std::move(path)}; }
    bool take(void* to, std::size_t n) noexcept {
        if (remaining() < n) return fail(errc::truncated);
        if (n != 0) std::memcpy(to, pos, n);
        pos += n;
        return true;
    }
    template <class U>
    bool take_value(U& value) noexcept {
        return take(&value, sizeof value);
    }
    // A count is only believed if the bytes left could hold that many of the smallest
    // element: this is what keeps a forged 4 GiB length from reaching an allocator.
    bool take_count(std::uint32_t& n, std::size_t min_element_size) {
        if (!take_value(n)) return false;
        if (min_element_size != 0 && n > remaining() / min_element_size) return fail(errc::length_overflow);
        return true;
    }
    bool enter() {
        if (++depth > max_depth) return fail(errc::too_deep);
        return true;
    }
    bool leave() noexcept {
        --depth;
        return true;
    }
    // Called while unwinding a failure, so the happy path never formats a path.
    // Built by appending rather than by insert(0, ...) or operator+: inlined into the user's
    // code, those make g++ 12 at -O3 warn of copies of impossible sizes (-Wstringop-overflow,
    // on by default), a false positive in their build that they could not silence here.
    bool prefix(std::string_view a, std::string_view b = {}) {
        std::string longer;
        longer.reserve(a.size() + b.size() + path.size());
        longer.append(a).append(b).append(path);
        path = std::move(longer);
        return false;
    }
    bool prefix_index(std::size_t i, std::string_view after = {}) {
        std::array<char, 24> index{'['};
        char* digits_end = std::to_chars(index.data() + 1, index.data() + index.size() - 1, i).ptr;
        *digits_end = ']';
        return prefix(std::string_view(index.data(), static_cast<std::size_t>(digits_end + 1 - index.data())), after);
    }
};

[[noreturn]] inline void throw_too_long() {
    throw std::system_error(make_error_code(errc::length_overflow),
                            "cluster::wire: a string, vector or map with 2^32 or more elements cannot be encoded");
}

inline std::size_t length_prefix(std::size_t n) {
    if (n > std::numeric_limits<std::uint32_t>::max()) throw_too_long();
    return sizeof(std::uint32_t);
}

// Non-bool arithmetic: every bit pattern is a valid value, so runs of them are memcpy'd.
template <class T>
inline constexpr bool is_bulk = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

template <class T>
concept described_struct = std::is_class_v<T> && boost::describe::has_describe_members<T>::value;

template <class T>
concept described_enum = std::is_enum_v<T> && boost::describe::has_describe_enumerators<T>::value;

// The canonical spelling is fed to a sink, which either hashes it (fingerprint) or
// collects it (schema text for diagnostics); both are constexpr-friendly.
template <class S>
constexpr void spell_number(S& sink, std::int64_t value) {
    if (value < 0) sink("-");
    auto magnitude = value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
    char digits[20] = {};
    std::size_t n = 0;
    do {
        digits[19 - n++] = static_cast<char>('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude != 0);
    sink(std::string_view(digits + 20 - n, n));
}

}  // namespace detail

// One specialisation per supported type family; each provides
//   min_size   the fewest bytes any value encodes to (bounds forged counts)
//   fixed      whether every value encodes to exactly min_size bytes
//   has_fds    whether values may carry file descriptors
//   size(v), write(w, v), read(r, v) -> bool, spell(sink)
// and, when fixed, may provide
//   read_at(r, p, v) -> bool   reads the min_size bytes at p, which the caller has checked
//                              are in r's input (r.pos is not used or moved)
// A described struct checks the bounds of a run of such members once, then reads them
// from known offsets, with no per-field check or update of r.pos. A family whose values
// have parts (elements, members) is walked by sendable.hpp too.
//
// The primary template is for types no codec encodes, and the families with parts (from
// duration to described structs) leave to it every type with a part no codec encodes. It
// has what the entry points below use, and nothing goes into the parts, so nothing fails
// to compile but sendable.hpp's one error, which every entry point asserts first, naming
// the part and where it is. What could run is declared only: were a type to slip past
// that assertion, the program would not link.
template <class T, class>
struct codec {
    using missing = void;
    static constexpr bool has_fds = false;
    static std::size_t size(const T& v);
    static void write(detail::writer& w, const T& v);
    static bool read(detail::reader& r, T& v);
    template <class S>
    static constexpr void spell(S&) {}
};

namespace detail {

// Whether T's codec has read_at(): T can be read where the caller has checked the bounds.
template <class T>
concept reads_at = codec<T>::fixed && requires(reader& r, const std::byte* p, T& v) {
    { codec<T>::read_at(r, p, v) } -> std::same_as<bool>;
};

}  // namespace detail

template <class T>
struct codec<T, std::enable_if_t<detail::is_bulk<T>>> {
    static constexpr std::size_t min_size = sizeof(T);
    static constexpr bool fixed = true;
    static constexpr bool has_fds = false;
    static constexpr std::size_t size(const T&) noexcept { return sizeof(T); }
    static void write(detail::writer& w, const T& v) noexcept { w.put_value(v); }
    static bool read(detail::reader& r, T& v) noexcept { return r.take_value(v); }
    static bool read_at(detail::reader&, const std::byte* p, T& v) noexcept {
        std::memcpy(&v, p, sizeof v);
        return true;
    }
    template <class S>
    static constexpr void spell(S& sink) {
        if constexpr (std::is_same_v<T, char>) {
            sink("char");
        } else {
            sink(std::is_floating_point_v<T> ? "f" : std::is_signed_v<T> ? "i" : "u");
            detail::spell_number(sink, sizeof(T) * 8);
        }
    }
};

template <>
struct codec<bool> {
    static constexpr std::size_t min_size = 1;
    static constexpr bool fixed = true;
    static constexpr bool has_fds = false;
    static constexpr std::size_t size(bool) noexcept { return 1; }
    static void write(detail::writer& w, bool v) noexcept { w.put_value(static_cast<std::uint8_t>(v)); }
    static bool read(detail::reader& r, bool& v) {
        return r.remaining() < min_size ? r.fail(errc::truncated) : read_at(r, r.pos++, v);
    }
    static bool read_at(detail::reader& r, const std::byte* p, bool& v) {
        const auto byte = static_cast<std::uint8_t>(*p);
        if (byte > 1) return r.fail(errc::invalid_value);
        v = byte == 1;
        return true;
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("bool");
    }
};

template <detail::described_enum E>
struct codec<E> {
    using underlying = std::underlying_type_t<E>;
    static constexpr std::size_t min_size = sizeof(underlying);
    static constexpr bool fixed = true;
    static constexpr bool has_fds = false;
    static constexpr std::size_t size(E) noexcept { return sizeof(underlying); }
    static void write(detail::writer& w, E v) noexcept { w.put_value(static_cast<underlying>(v)); }
    static bool read(detail::reader& r, E& v) {
        if (r.remaining() < min_size) return r.fail(errc::truncated);
        r.pos += min_size;
        return read_at(r, r.pos - min_size, v);
    }
    static bool read_at(detail::reader& r, const std::byte* p, E& v) {
        underlying raw{};
        std::memcpy(&raw, p, sizeof raw);
        if (!is_enumerator(raw)) return r.fail(errc::invalid_enum);
        v = static_cast<E>(raw);
        return true;
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("enum<");
        codec<underlying>::spell(sink);
        sink(">{");
        boost::mp11::mp_for_each<boost::describe::describe_enumerators<E>>([&](auto d) {
            sink(d.name);
            sink("=");
            detail::spell_number(sink, static_cast<std::int64_t>(d.value));
            sink(";");
        });
        sink("}");
    }

private:
    static constexpr bool is_enumerator(underlying raw) noexcept {
        bool found = false;
        boost::mp11::mp_for_each<boost::describe::describe_enumerators<E>>(
            [&](auto d) { found = found || static_cast<underlying>(d.value) == raw; });
        return found;
    }
};

template <>
struct codec<std::monostate> {
    static constexpr std::size_t min_size = 0;
    static constexpr bool fixed = true;
    static constexpr bool has_fds = false;
    static constexpr std::size_t size(std::monostate) noexcept { return 0; }
    static void write(detail::writer&, std::monostate) noexcept {}
    static bool read(detail::reader&, std::monostate&) noexcept { return true; }
    static bool read_at(detail::reader&, const std::byte*, std::monostate&) noexcept { return true; }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("none");
    }
};

template <>
struct codec<std::string> {
    static constexpr std::size_t min_size = sizeof(std::uint32_t);
    static constexpr bool fixed = false;
    static constexpr bool has_fds = false;
    static std::size_t size(const std::string& v) { return detail::length_prefix(v.size()) + v.size(); }
    static void write(detail::writer& w, const std::string& v) noexcept {
        w.put_value(static_cast<std::uint32_t>(v.size()));
        w.put_run(v.data(), v.size());
    }
    // Forced inline: a string is in most messages, and as a call (clang's choice) its
    // spills and reloads of the reader cost a small message's receive 5%.
    [[gnu::always_inline]] static bool read(detail::reader& r, std::string& v) {
        std::uint32_t n = 0;
        if (!r.take_count(n, 1)) return false;
        // clear() + append(): assign() goes through the general _M_replace, which costs
        // as much again as the whole rest of a small message's decode.
        v.clear();
        v.append(reinterpret_cast<const char*>(r.pos), n);
        r.pos += n;
        return true;
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("string");
    }
};

template <class Rep, class Period>
    requires sendable<Rep>
struct codec<std::chrono::duration<Rep, Period>> {
    using duration = std::chrono::duration<Rep, Period>;
    static constexpr std::size_t min_size = codec<Rep>::min_size;
    static constexpr bool fixed = true;
    static constexpr bool has_fds = false;
    static constexpr std::size_t size(const duration&) noexcept { return min_size; }
    static void write(detail::writer& w, const duration& v) noexcept { codec<Rep>::write(w, v.count()); }
    static bool read(detail::reader& r, duration& v) {
        Rep count{};
        if (!codec<Rep>::read(r, count)) return false;
        v = duration(count);
        return true;
    }
    static bool read_at(detail::reader& r, const std::byte* p, duration& v) {
        Rep count{};
        if (!codec<Rep>::read_at(r, p, count)) return false;
        v = duration(count);
        return true;
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("duration<");
        codec<Rep>::spell(sink);
        sink(",");
        detail::spell_number(sink, Period::num);
        sink("/");
        detail::spell_number(sink, Period::den);
        sink(">");
    }
};

template <>
struct codec<unique_fd> {
    static constexpr std::size_t min_size = sizeof(std::uint32_t);
    static constexpr bool fixed = true;
    static constexpr bool has_fds = true;
    static constexpr std::size_t size(const unique_fd&) noexcept { return min_size; }
    static void write(detail::writer& w, const unique_fd& v) {
        if (!v.valid()) return w.put_value(detail::no_fd);
        w.put_value(static_cast<std::uint32_t>(w.fds->size()));
        w.fds->push_back(v.get());
    }
    // Taking the fd out of the span is what makes a second reference to it missing_fd.
    static bool read(detail::reader& r, unique_fd& v) {
        if (r.remaining() < min_size) return r.fail(errc::truncated);
        r.pos += min_size;
        return read_at(r, r.pos - min_size, v);
    }
    static bool read_at(detail::reader& r, const std::byte* p, unique_fd& v) {
        std::uint32_t index = 0;
        std::memcpy(&index, p, sizeof index);
        if (index == detail::no_fd) {
            v.reset();
            return true;
        }
        if (index < r.fds.size() && r.fds[index].get() == lost_fd) {
            v.reset();
            return true;
        }
        if (index >= r.fds.size() || !r.fds[index].valid()) return r.fail(errc::missing_fd);
        v = std::move(r.fds[index]);
        return true;
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("fd");
    }
};

template <class T, class Alloc>
    requires sendable<T>
struct codec<std::vector<T, Alloc>> {
    using element = codec<T>;
    static_assert(element::min_size != 0, "cluster::wire: vector elements must encode to at least one byte");
    static constexpr std::size_t min_size = sizeof(std::uint32_t);
    static constexpr bool fixed = false;
    static constexpr bool has_fds = element::has_fds;

    static std::size_t size(const std::vector<T, Alloc>& v) {
        std::size_t n = detail::length_prefix(v.size());
        if constexpr (element::fixed) {
            n += v.size() * element::min_size;
        } else {
            for (const auto& e : v) n += element::size(e);
        }
        return n;
    }
    static void write(detail::writer& w, const std::vector<T, Alloc>& v) {
        w.put_value(static_cast<std::uint32_t>(v.size()));
        if constexpr (detail::is_bulk<T>) {
            w.put_run(v.data(), v.size() * sizeof(T));
        } else {
            for (const auto& e : v) element::write(w, e);
        }
    }
    static bool read(detail::reader& r, std::vector<T, Alloc>& v) {
        std::uint32_t n = 0;
        if (!r.take_count(n, element::min_size)) return false;
        if constexpr (detail::is_bulk<T>) {
            v.resize(n);
            return r.take(v.data(), n * sizeof(T));
        } else {
            if (!r.enter()) return false;
            v.clear();
            v.reserve(n);
            for (std::uint32_t i = 0; i < n; ++i)
                if (!read_element(r, v)) return r.prefix_index(i);
            return r.leave();
        }
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("vector<");
        element::spell(sink);
        sink(">");
    }

private:
    // vector<bool> hands out proxies, not bool&, so it decodes through a local.
    static bool read_element(detail::reader& r, std::vector<T, Alloc>& v) {
        if constexpr (std::is_same_v<T, bool>) {
            bool b = false;
            if (!element::read(r, b)) return false;
            v.push_back(b);
            return true;
        } else {
            return element::read(r, v.emplace_back());
        }
    }
};

template <class T, std::size_t N>
    requires sendable<T>
struct codec<std::array<T, N>> {
    using element = codec<T>;
    static constexpr std::size_t min_size = N * element::min_size;
    static constexpr bool fixed = element::fixed;
    static constexpr bool has_fds = element::has_fds;

    static std::size_t size(const std::array<T, N>& v) {
        if constexpr (fixed) {
            return min_size;
        } else {
            std::size_t n = 0;
            for (const auto& e : v) n += element::size(e);
            return n;
        }
    }
    static void write(detail::writer& w, const std::array<T, N>& v) {
        if constexpr (detail::is_bulk<T>) {
            w.put_run(v.data(), sizeof v);
        } else {
            for (const auto& e : v) element::write(w, e);
        }
    }
    static bool read(detail::reader& r, std::array<T, N>& v) {
        if constexpr (detail::is_bulk<T>) {
            return r.take(v.data(), N * sizeof(T));
        } else {
            if (!r.enter()) return false;
            for (std::size_t i = 0; i < N; ++i)
                if (!element::read(r, v[i])) return r.prefix_index(i);
            return r.leave();
        }
    }
    static bool read_at(detail::reader& r, const std::byte* p, std::array<T, N>& v)
        requires detail::reads_at<T>
    {
        if constexpr (detail::is_bulk<T>) {
            if constexpr (N != 0) std::memcpy(v.data(), p, N * sizeof(T));
            return true;
        } else {
            if (!r.enter()) return false;
            for (std::size_t i = 0; i < N; ++i)
                if (!element::read_at(r, p + i * element::min_size, v[i])) return r.prefix_index(i);
            return r.leave();
        }
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("array<");
        element::spell(sink);
        sink(",");
        detail::spell_number(sink, static_cast<std::int64_t>(N));
        sink(">");
    }
};

template <class T>
    requires sendable<T>
struct codec<std::optional<T>> {
    using element = codec<T>;
    static constexpr std::size_t min_size = 1;
    static constexpr bool fixed = false;
    static constexpr bool has_fds = element::has_fds;

    static std::size_t size(const std::optional<T>& v) { return 1 + (v ? element::size(*v) : 0); }
    static void write(detail::writer& w, const std::optional<T>& v) {
        w.put_value(static_cast<std::uint8_t>(v.has_value()));
        if (v) element::write(w, *v);
    }
    static bool read(detail::reader& r, std::optional<T>& v) {
        std::uint8_t engaged = 0;
        if (!r.take_value(engaged)) return false;
        if (engaged > 1) return r.fail(errc::invalid_value);
        if (engaged == 0) {
            v.reset();
            return true;
        }
        return r.enter() && element::read(r, v.emplace()) && r.leave();
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("optional<");
        element::spell(sink);
        sink(">");
    }
};

template <class... Ts>
    requires(sendable<Ts> && ...)
struct codec<std::variant<Ts...>> {
    static_assert(sizeof...(Ts) <= 255, "cluster::wire: a variant's index is encoded in one byte");
    using variant = std::variant<Ts...>;
    static constexpr std::size_t min_size = 1 + std::min({codec<Ts>::min_size...});
    static constexpr bool fixed = false;
    static constexpr bool has_fds = (codec<Ts>::has_fds || ...);

    // std::visit throws bad_variant_access for a valueless variant: nothing to send.
    static std::size_t size(const variant& v) {
        return 1 + std::visit([](const auto& alt) { return codec_of(alt).size(alt); }, v);
    }
    static void write(detail::writer& w, const variant& v) {
        w.put_value(static_cast<std::uint8_t>(v.index()));
        std::visit([&](const auto& alt) { codec_of(alt).write(w, alt); }, v);
    }
    static bool read(detail::reader& r, variant& v) {
        std::uint8_t index = 0;
        if (!r.take_value(index)) return false;
        if (index >= sizeof...(Ts)) return r.fail(errc::invalid_variant_index);
        if (!r.enter()) return false;
        return boost::mp11::mp_with_index<sizeof...(Ts)>(index, [&](auto i) {
            using alternative = std::variant_alternative_t<i, variant>;
            if (!codec<alternative>::read(r, v.template emplace<i>())) return prefix_alternative<alternative>(r, i);
            return r.leave();
        });
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("variant<");
        bool first = true;
        ((sink(std::exchange(first, false) ? "" : ","), codec<Ts>::spell(sink)), ...);
        sink(">");
    }

private:
    template <class A>
    static codec<A> codec_of(const A&) {
        return {};
    }
    // Named alternatives read better in a path than their index.
    template <class A>
    static bool prefix_alternative(detail::reader& r, std::size_t i) {
        if constexpr (detail::described_struct<A> || detail::described_enum<A>)
            return r.prefix("<", std::string(type_name<A>()) + ">");
        else
            return r.prefix("<", std::to_string(i) + ">");
    }
};

namespace detail {

// std::map and std::unordered_map share one encoding: a count, then key, value pairs.
template <class Map>
struct map_codec {
    using key = typename Map::key_type;
    using mapped = typename Map::mapped_type;
    static constexpr std::size_t pair_size = codec<key>::min_size + codec<mapped>::min_size;
    static_assert(pair_size != 0, "cluster::wire: map entries must encode to at least one byte");
    static constexpr std::size_t min_size = sizeof(std::uint32_t);
    static constexpr bool fixed = false;
    static constexpr bool has_fds = codec<key>::has_fds || codec<mapped>::has_fds;

    static std::size_t size(const Map& m) {
        std::size_t n = length_prefix(m.size());
        if constexpr (codec<key>::fixed && codec<mapped>::fixed) {
            n += m.size() * pair_size;
        } else {
            for (const auto& [k, v] : m) n += codec<key>::size(k) + codec<mapped>::size(v);
        }
        return n;
    }
    static void write(writer& w, const Map& m) {
        w.put_value(static_cast<std::uint32_t>(m.size()));
        for (const auto& [k, v] : m) {
            codec<key>::write(w, k);
            codec<mapped>::write(w, v);
        }
    }
    // A repeated key is rejected: no encoder of a real map produces one.
    static bool read(reader& r, Map& m) {
        std::uint32_t n = 0;
        if (!r.take_count(n, pair_size)) return false;
        if (!r.enter()) return false;
        m.clear();
        if constexpr (requires { m.reserve(n); }) m.reserve(n);
        for (std::uint32_t i = 0; i < n; ++i) {
            key k{};
            mapped v{};
            if (!codec<key>::read(r, k)) return r.prefix_index(i, ".key");
            if (!codec<mapped>::read(r, v)) return r.prefix_index(i, ".value");
            if (!m.emplace(std::move(k), std::move(v)).second) {
                r.fail(errc::invalid_value);
                return r.prefix_index(i, ".key");
            }
        }
        return r.leave();
    }
    template <class S>
    static constexpr void spell(S& sink) {
        sink("map<");
        codec<key>::spell(sink);
        sink(",");
        codec<mapped>::spell(sink);
        sink(">");
    }
};

}  // namespace detail

template <class K, class V, class Compare, class Alloc>
    requires(sendable<K> && sendable<V>)
struct codec<std::map<K, V, Compare, Alloc>> : detail::map_codec<std::map<K, V, Compare, Alloc>> {};

template <class K, class V, class Hash, class Eq, class Alloc>
    requires(sendable<K> && sendable<V>)
struct codec<std::unordered_map<K, V, Hash, Eq, Alloc>> : detail::map_codec<std::unordered_map<K, V, Hash, Eq, Alloc>> {
};

namespace detail {

template <class P>
struct pointee;
template <class C, class M>
struct pointee<M C::*> {
    using type = M;
};

// Folds over a Boost.Describe descriptor list; f is called as f.template operator()<D>().
template <template <class...> class L, class... D, class F>
constexpr std::size_t sum_over(L<D...>, [[maybe_unused]] F f) {
    return (std::size_t{0} + ... + f.template operator()<D>());
}
template <template <class...> class L, class... D, class F>
constexpr bool any_over(L<D...>, [[maybe_unused]] F f) {
    return (false || ... || f.template operator()<D>());
}

}  // namespace detail

// Described structs: public bases first (flattened into the derived struct's path),
// then the struct's own members of any access, in declaration order.
template <detail::described_struct T>
    requires sendable<T>
struct codec<T> {
    static constexpr auto any_access =
        boost::describe::mod_public | boost::describe::mod_protected | boost::describe::mod_private;
    using bases = boost::describe::describe_bases<T, boost::describe::mod_public>;
    using members = boost::describe::describe_members<T, any_access>;
    static_assert(boost::mp11::mp_size<bases>::value ==
                      boost::mp11::mp_size<boost::describe::describe_bases<T, any_access>>::value,
                  "cluster::wire: a described struct's bases must be public to be encoded");

    template <class D>
    using member = typename detail::pointee<std::remove_cv_t<decltype(D::pointer)>>::type;
    template <class D>
    using base = typename D::type;
    static constexpr std::size_t member_count = boost::mp11::mp_size<members>::value;
    template <std::size_t I>
    using member_at = boost::mp11::mp_at_c<members, I>;

    static constexpr std::size_t min_size =
        detail::sum_over(bases{}, []<class D>() { return codec<base<D>>::min_size; }) +
        detail::sum_over(members{}, []<class D>() { return codec<member<D>>::min_size; });
    static constexpr bool fixed = !detail::any_over(bases{}, []<class D>() { return !codec<base<D>>::fixed; }) &&
                                  !detail::any_over(members{}, []<class D>() { return !codec<member<D>>::fixed; });
    static constexpr bool has_fds = detail::any_over(bases{}, []<class D>() { return codec<base<D>>::has_fds; }) ||
                                    detail::any_over(members{}, []<class D>() { return codec<member<D>>::has_fds; });

    static std::size_t size(const T& v) {
        if constexpr (fixed) {
            return min_size;
        } else {
            return [&]<template <class...> class L, class... D>(L<D...>) {
                return (std::size_t{0} + ... + codec<base<D>>::size(v));
            }(bases{}) +
                   [&]<template <class...> class L, class... D>(L<D...>) {
                       return (std::size_t{0} + ... + codec<member<D>>::size(v.*D::pointer));
                   }(members{});
        }
    }
    // Whether the whole struct, bases included, can be read where its bounds were checked.
    static constexpr bool all_read_at = !detail::any_over(bases{}, []<class D>() {
        return !codec<base<D>>::all_read_at;
    }) && !detail::any_over(members{}, []<class D>() { return !detail::reads_at<member<D>>; });

    // Forced inline down to the members (write_fields, write_bases, write_members), as
    // read() is: out of line, the writer lives in memory, and every field stored through
    // it (std::byte aliases anything) reloads and stores its position again. g++ -O2 leaves
    // a struct's fields as a call once it is encoded in more than one place (a channel's
    // send and a buffer), and a small message's encode then cost three times clang's.
    [[gnu::always_inline]] static void write(detail::writer& w, const T& v) { write_fields(w, v); }
    // Forced inline down to the members (read_fields, read_members, read_member): a call
    // per struct level spills the reader, and a small message spent more on the calls
    // than on its fields.
    [[gnu::always_inline]] static bool read(detail::reader& r, T& v) {
        return r.enter() && read_fields(r, v) && r.leave();
    }
    static bool read_at(detail::reader& r, const std::byte* p, T& v)
        requires all_read_at
    {
        return r.enter() && read_fields_at(r, p, v) && r.leave();
    }

    template <class S>
    static constexpr void spell(S& sink) {
        sink("{");
        spell_fields(sink);
        sink("}");
    }

    // A base's fields, written as part of a derived struct: no nesting of their own.
    [[gnu::always_inline]] static void write_fields(detail::writer& w, const T& v) {
        write_bases(w, v, bases{});
        write_members(w, v, members{});
    }
    [[gnu::always_inline]] static bool read_fields(detail::reader& r, T& v) {
        return read_bases(r, v) && read_members<0>(r, v);
    }
    static bool read_fields_at(detail::reader& r, const std::byte* p, T& v)
        requires all_read_at
    {
        return [&]<template <class...> class L, class... D>(L<D...>) {
            return ((codec<base<D>>::read_fields_at(r, p, v) && (p += codec<base<D>>::min_size, true)) && ...);
        }(bases{}) &&
               read_run<0>(r, p, v, std::make_index_sequence<member_count>{});
    }
    template <class S>
    static constexpr void spell_fields(S& sink) {
        [&]<template <class...> class L, class... D>(L<D...>) { (codec<base<D>>::spell_fields(sink), ...); }(bases{});
        [&]<template <class...> class L, class... D>(L<D...>) {
            ((sink(D::name), sink(":"), codec<member<D>>::spell(sink), sink(";")), ...);
        }(members{});
    }

private:
    template <template <class...> class L, class... D>
    [[gnu::always_inline]] static void write_bases(detail::writer& w, const T& v, L<D...>) {
        (codec<base<D>>::write_fields(w, v), ...);
    }
    template <template <class...> class L, class... D>
    [[gnu::always_inline]] static void write_members(detail::writer& w, const T& v, L<D...>) {
        (codec<member<D>>::write(w, v.*D::pointer), ...);
    }
    static bool read_bases(detail::reader& r, T& v) {
        return [&]<template <class...> class L, class... D>(L<D...>) {
            return (codec<base<D>>::read_fields(r, v) && ...);
        }(bases{});
    }
    template <std::size_t I>
    [[gnu::always_inline]] static bool read_member(detail::reader& r, T& v) {
        using D = member_at<I>;
        return codec<member<D>>::read(r, v.*D::pointer) || r.prefix(".", D::name);
    }
    template <std::size_t I>
    static bool read_member_at(detail::reader& r, const std::byte* p, T& v) {
        using D = member_at<I>;
        return codec<member<D>>::read_at(r, p, v.*D::pointer) || r.prefix(".", D::name);
    }

    // Per member: whether it has read_at, and where it starts if all before it are fixed.
    static constexpr auto member_reads_at = []<std::size_t... I>(std::index_sequence<I...>) {
        return std::array<bool, member_count>{detail::reads_at<member<member_at<I>>>...};
    }(std::make_index_sequence<member_count>{});
    static constexpr auto member_offset = []<std::size_t... I>(std::index_sequence<I...>) {
        std::array<std::size_t, member_count + 1> offsets{};
        ((offsets[I + 1] = offsets[I] + codec<member<member_at<I>>>::min_size), ...);
        return offsets;
    }(std::make_index_sequence<member_count>{});
    static constexpr std::size_t run_end(std::size_t i) {
        while (i < member_count && member_reads_at[i]) ++i;
        return i;
    }

    // Members I onwards. A run of members with read_at costs one bounds check; if the
    // input is too short for it, its members are read one by one, which finds the one cut
    // short for the error path. Forced inline, with read_member(): members after a run
    // were otherwise left as a call per struct.
    template <std::size_t I>
    [[gnu::always_inline]] static bool read_members(detail::reader& r, T& v) {
        if constexpr (I == member_count) {
            return true;
        } else if constexpr (!member_reads_at[I]) {
            return read_member<I>(r, v) && read_members<I + 1>(r, v);
        } else {
            constexpr std::size_t end = run_end(I);
            constexpr std::size_t bytes = member_offset[end] - member_offset[I];
            auto run = std::make_index_sequence<end - I>{};
            if (r.remaining() < bytes) return read_each<I>(r, v, run);
            const std::byte* p = r.pos;
            r.pos += bytes;
            return read_run<I>(r, p, v, run) && read_members<end>(r, v);
        }
    }
    template <std::size_t I, std::size_t... K>
    static bool read_each(detail::reader& r, T& v, std::index_sequence<K...>) {
        return (read_member<I + K>(r, v) && ...);
    }
    // Members I + K..., whose bytes start at p.
    template <std::size_t I, std::size_t... K>
    static bool read_run(detail::reader& r, const std::byte* p, T& v, std::index_sequence<K...>) {
        return (read_member_at<I + K>(r, p + (member_offset[I + K] - member_offset[I]), v) && ...);
    }
};

// The entry points below are declared inline: GCC then inlines them where a template
// alone stays a call, and for a small message that call was a third of the codec's time.

// Whether T can carry file descriptors (and so needs an fd_list to be encoded).
template <class T>
inline constexpr bool carries_fds = detail::checked<T> && codec<T>::has_fds;

// The exact number of bytes encode() appends for v.
template <class T>
[[nodiscard]] inline std::size_t encoded_size(const T& v) {
    static_assert(detail::checked<T>);
    return codec<T>::size(v);
}

// Writes exactly encoded_size(v) bytes at out; returns the end of what was written.
template <class T>
inline std::byte* encode_to(std::byte* out, const T& v, fd_list* fds) {
    static_assert(detail::checked<T>);
    detail::writer w{out, fds};
    codec<T>::write(w, v);
    return w.pos;
}

// Appends v's encoding to out and the fds it refers to (in index order) to fds.
template <class T>
inline void encode(const T& v, buffer& out, fd_list& fds) {
    encode_to(out.extend(encoded_size(v)), v, &fds);
}

template <class T>
    requires(!carries_fds<T>)
inline void encode(const T& v, buffer& out) {
    encode_to(out.extend(encoded_size(v)), v, nullptr);
}

namespace detail {

// Paths start at a named type; containers at the root start with their first segment.
template <class T>
constexpr std::string_view root_name() noexcept {
    if constexpr (described_struct<T> || described_enum<T>)
        return type_name<T>();
    else
        return {};
}

// Converts to a default-initialised T. As a constructor argument the copy is elided,
// so the T is built in place without the value-initialisation `T()` would do.
// The members are indeterminate until the decoder writes them, which it does for every
// one before the value is used (a failed decode discards it): g++ cannot see that.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <class T>
struct default_initialised {
    template <class U>
        requires std::is_same_v<U, T>
    [[gnu::always_inline]] operator U() const {
        T v;
        return v;
    }
};
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// Calls make with the constructor arguments of a fresh T for the decoder to fill. An
// aggregate is default-initialised: the decoder writes every member, and value-
// initialising it would first zero the whole object, padding and all (that zeroing was
// most of a small message's decode time). Anything else, which may have constructors
// default_initialised could confuse, is value-initialised.
template <class T, class Make>
[[gnu::always_inline]] inline decltype(auto) make_fresh(Make make) {
    if constexpr (std::is_aggregate_v<T>)
        return make(default_initialised<T>{});
    else
        return make();
}

// Reads a T from all of r's input: bytes left over are an error too.
template <class T>
[[gnu::always_inline]] inline bool read_whole(reader& r, T& v) {
    static_assert(checked<T>);
    return codec<T>::read(r, v) && (r.pos == r.end || r.fail(errc::trailing_bytes));
}

// Roots the path of the error r ran into at T. Out of line: only a failure formats a path.
template <class T>
[[gnu::cold, gnu::noinline]] void root_path(reader& r) {
    r.path.insert(0, root_name<T>());
}

// The error r ran into, its path rooted at T.
template <class T>
[[gnu::cold, gnu::noinline]] decode_error error_of(reader& r) {
    root_path<T>(r);
    return r.take_error();
}

// Turns out into that error; out of line for the same reason.
template <class T>
[[gnu::cold, gnu::noinline]] void fail(decode_result<T>& out, reader& r) {
    out = decode_result<T>(boost::system::in_place_error, error_of<T>(r));
}

// wire::decode_into() for a receiver decoding message after message: a failure is left in
// r (its path rooted at T), so success costs no decode_error built, tested or destroyed.
template <class T>
[[gnu::always_inline]] inline bool decode_into(T& v, reader& r) {
    if (read_whole(r, v)) return true;
    root_path<T>(r);
    return false;
}

}  // namespace detail

// Decodes exactly all of in into v, overwriting what it held: decode<T> for a caller that
// has a T to fill (one built in place where it will be handed out: nothing is moved).
// On failure v holds a partly decoded value, good only for destruction or assignment.
template <class T>
[[nodiscard]] inline std::optional<decode_error>
decode_into(T& v, std::span<const std::byte> in, std::span<unique_fd> fds = {}, const shared_bytes* owner = nullptr) {
    detail::reader r(in, fds);
    r.owner = owner;
    if (detail::read_whole(r, v)) return std::nullopt;
    return detail::error_of<T>(r);
}

namespace detail {

// decode()'s work, in a function of its own: one named result, decoded into in place (NRVO,
// no move of the decoded value), which g++ 12 does not apply in a function that has another
// return statement, even one that if constexpr discards.
template <class T>
[[nodiscard]] inline decode_result<T> decode_sendable(std::span<const std::byte> in, std::span<unique_fd> fds,
                                                      const shared_bytes* owner) {
    auto out = make_fresh<T>([](auto... fresh) { return decode_result<T>(boost::system::in_place_value, fresh...); });
    reader r(in, fds);
    r.owner = owner;
    if (!read_whole(r, *out)) fail(out, r);
    return out;
}

}  // namespace detail

// Decodes exactly all of in as a T. fds are the descriptors that arrived with the bytes;
// those the message refers to are moved out of the span, the rest stay with the caller.
// owner, when given, holds in's bytes: decoded shared_bytes may share them instead of copying.
template <class T>
[[nodiscard]] inline decode_result<T> decode(std::span<const std::byte> in, std::span<unique_fd> fds = {},
                                             const shared_bytes* owner = nullptr) {
    static_assert(detail::checked<T>);
    // A part the codec cannot encode may be what has no default constructor: checked<T>
    // has said so, and nothing that needs one is compiled.
    static_assert(!sendable<T> || std::is_default_constructible_v<T>,
                  "cluster::wire: decoded types must be default-constructible");
    if constexpr (!sendable<T>)
        return decode_result<T>(boost::system::in_place_error, decode_error{});
    else
        return detail::decode_sendable<T>(in, fds, owner);
}

}  // namespace cluster::wire
