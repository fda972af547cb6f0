// cluster::wire::sendable<T> and cannot_send<Message, Part, Path...>: whether the codec can
// encode T, and if not, the one compile error naming the member it cannot, with advice.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include <boost/describe/bases.hpp>
#include <boost/describe/members.hpp>
#include <boost/describe/modifiers.hpp>
#include <boost/mp11/algorithm.hpp>

#include <cluster/wire/type_name.hpp>

namespace cluster::wire {

// Defined in codec.hpp. Its primary template, for types no codec encodes, has a `missing`
// member: that is how the walk below tells a leaf it cannot send.
template <class T, class = void>
struct codec;

// A step along a path into a message that is not a member: into an element of a vector or
// an array, a map's key or value, or a variant's alternative.
enum class step { element, key, value, alternative };

// What a part of a message is that no codec encodes: each kind has its own advice.
enum class unsendable {
    raw_pointer,
    c_string,
    function_pointer,
    member_pointer,
    reference,
    union_type,
    c_array,
    function_object,
    smart_pointer,
    view,
    undescribed_enum,
    undescribed_class,
    standard_type,
    other
};

namespace detail {

template <class T, template <class...> class Template>
inline constexpr bool instance_of = false;
template <template <class...> class Template, class... Args>
inline constexpr bool instance_of<Template<Args...>, Template> = true;

template <class T>
inline constexpr bool is_span = false;
template <class T, std::size_t Extent>
inline constexpr bool is_span<std::span<T, Extent>> = true;

template <class T>
inline constexpr bool is_char =
    std::is_same_v<T, char> || std::is_same_v<T, signed char> || std::is_same_v<T, unsigned char> ||
    std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
    std::is_same_v<T, char32_t>;

// What kind of thing T is, given that no codec encodes it.
template <class T>
constexpr unsendable kind_of() noexcept {
    using pointee = std::remove_cv_t<std::remove_pointer_t<T>>;
    if constexpr (std::is_pointer_v<T> && std::is_function_v<pointee>)
        return unsendable::function_pointer;
    else if constexpr (std::is_pointer_v<T> && is_char<pointee>)
        return unsendable::c_string;
    else if constexpr (std::is_pointer_v<T>)
        return unsendable::raw_pointer;
    else if constexpr (std::is_member_pointer_v<T>)
        return unsendable::member_pointer;
    else if constexpr (std::is_reference_v<T> || instance_of<T, std::reference_wrapper>)
        return unsendable::reference;
    else if constexpr (std::is_union_v<T>)
        return unsendable::union_type;
    else if constexpr (std::is_array_v<T>)
        return unsendable::c_array;
    else if constexpr (std::is_enum_v<T>)
        return unsendable::undescribed_enum;
    else if constexpr (instance_of<T, std::function> || requires { &T::operator(); })
        return unsendable::function_object;
    else if constexpr (instance_of<T, std::unique_ptr> || instance_of<T, std::shared_ptr> ||
                       instance_of<T, std::weak_ptr>)
        return unsendable::smart_pointer;
    else if constexpr (instance_of<T, std::basic_string_view> || is_span<T>)
        return unsendable::view;
    else if constexpr (std::is_class_v<T> && compiler_name<T>().starts_with("std::"))
        return unsendable::standard_type;
    else if constexpr (std::is_class_v<T>)
        return unsendable::undescribed_class;
    else
        return unsendable::other;
}

}  // namespace detail

// The error for a Message that holds a Part no codec encodes, at Path: the members (as
// member pointers, a base's named by the base) and steps that lead from Message to Part.
// Reading `cannot_send<shop::order, shop::person*, &shop::order::items, step::element,
// &shop::item::owner>`: an order's items are items, whose owner is a person*. Exactly one
// of the assertions below fails, and its text says what to send instead.
template <class Message, class Part, auto... Path>
struct cannot_send {
    static constexpr unsendable kind = detail::kind_of<Part>();
    static_assert(kind != unsendable::raw_pointer, "cluster: a raw pointer cannot be sent: send an id or a std::string "
                                                   "(cannot_send<message, its type, path> says where)");
    static_assert(
        kind != unsendable::c_string,
        "cluster: a C string cannot be sent: send a std::string (cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::function_pointer,
                  "cluster: a function pointer cannot be sent: send an enum or a name that says what to run "
                  "(cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::member_pointer,
                  "cluster: a pointer to member cannot be sent: send an enum or a name that says which member "
                  "(cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::reference, "cluster: a reference cannot be sent: send the value, or an id of it "
                                                 "(cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::union_type,
                  "cluster: a union cannot be sent, as the receiver could not tell which member is live: use "
                  "std::variant (cannot_send<message, its type, path> says where)");
    static_assert(
        kind != unsendable::c_array,
        "cluster: a C array cannot be sent: use std::array (cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::function_object,
                  "cluster: a function object cannot be sent: send an enum or a name that says what to run "
                  "(cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::smart_pointer,
                  "cluster: a smart pointer cannot be sent: send the value, in a std::optional if it may be missing "
                  "(cannot_send<message, its type, path> says where)");
    static_assert(
        kind != unsendable::view,
        "cluster: a view cannot be sent, as the receiver does not share the memory it sees: send a std::string, a "
        "std::vector or a cluster::shared_bytes (cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::undescribed_enum,
                  "cluster: an enum that is not described cannot be sent: add BOOST_DESCRIBE_ENUM(E, enumerators...) "
                  "after it (cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::undescribed_class,
                  "cluster: a class that is not described cannot be sent: add BOOST_DESCRIBE_STRUCT(T, (bases...), "
                  "(members...)) after it (cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::standard_type,
                  "cluster: this standard type cannot be sent: use a std::string, vector, array, map, unordered_map, "
                  "optional, variant or chrono duration, or a described struct for a pair or a tuple "
                  "(cannot_send<message, its type, path> says where)");
    static_assert(kind != unsendable::other, "cluster: this type cannot be sent: docs/messages.md says what a message "
                                             "may hold (cannot_send<message, its type, path> says where)");
};

namespace detail {

struct nothing_unsendable {};
template <class Part, auto... Path>
struct unsendable_part {};

// unsendable_in<T, Path...>::type: the first part of T, in encoding order, that no codec
// encodes, as unsendable_part<Part, Path...>; nothing_unsendable if there is none. It walks
// the families of codec.hpp that have parts, without instantiating their codecs (which
// leave such types to the primary template): a family with parts needs its walk here too.
template <class T, auto... Path>
struct unsendable_in {
    using type =
        std::conditional_t<requires { typename codec<T>::missing; }, unsendable_part<T, Path...>, nothing_unsendable>;
};

template <class Found>
using is_unsendable_part = boost::mp11::mp_bool<!std::is_same_v<Found, nothing_unsendable>>;

// The first of Found... that is not nothing_unsendable, or nothing_unsendable.
template <class... Found>
using first_unsendable =
    boost::mp11::mp_at<boost::mp11::mp_list<Found..., nothing_unsendable>,
                       boost::mp11::mp_find_if<boost::mp11::mp_list<Found...>, is_unsendable_part>>;

template <class M>
struct member_type;
template <class C, class M>
struct member_type<M C::*> {
    using type = std::remove_cv_t<M>;
};
template <class D>
using member_of = typename member_type<std::remove_cv_t<decltype(D::pointer)>>::type;

// Described structs: public bases first, their members named by the base, then the
// struct's own members, as the codec encodes them.
template <class T, auto... Path>
    requires(std::is_class_v<T> && boost::describe::has_describe_members<T>::value)
struct unsendable_in<T, Path...> {
    static constexpr auto any_access =
        boost::describe::mod_public | boost::describe::mod_protected | boost::describe::mod_private;
    template <template <class...> class L, class... B, class... D>
    static auto first(L<B...>, L<D...>)
        -> first_unsendable<typename unsendable_in<typename B::type, Path...>::type...,
                            typename unsendable_in<member_of<D>, Path..., D::pointer>::type...>;
    using type = decltype(first(boost::describe::describe_bases<T, boost::describe::mod_public>{},
                                boost::describe::describe_members<T, any_access>{}));
};

template <class T, class A, auto... Path>
struct unsendable_in<std::vector<T, A>, Path...> : unsendable_in<T, Path..., step::element> {};
template <class T, std::size_t N, auto... Path>
struct unsendable_in<std::array<T, N>, Path...> : unsendable_in<T, Path..., step::element> {};
template <class T, auto... Path>
struct unsendable_in<std::optional<T>, Path...> : unsendable_in<T, Path...> {};
template <class Rep, class Period, auto... Path>
struct unsendable_in<std::chrono::duration<Rep, Period>, Path...> : unsendable_in<Rep, Path...> {};
template <class... Ts, auto... Path>
struct unsendable_in<std::variant<Ts...>, Path...> {
    using type = first_unsendable<typename unsendable_in<Ts, Path..., step::alternative>::type...>;
};
template <class K, class V, class C, class A, auto... Path>
struct unsendable_in<std::map<K, V, C, A>, Path...> {
    using type = first_unsendable<typename unsendable_in<K, Path..., step::key>::type,
                                  typename unsendable_in<V, Path..., step::value>::type>;
};
template <class K, class V, class H, class E, class A, auto... Path>
struct unsendable_in<std::unordered_map<K, V, H, E, A>, Path...> {
    using type = first_unsendable<typename unsendable_in<K, Path..., step::key>::type,
                                  typename unsendable_in<V, Path..., step::value>::type>;
};

// refusal<T>::refuse() instantiates the cannot_send that describes T's first unsendable
// part, if it has one; it is never called.
template <class T, class Found = typename unsendable_in<T>::type>
struct refusal {
    static constexpr bool refuse() noexcept { return true; }
};
template <class T, class Part, auto... Path>
struct refusal<T, unsendable_part<Part, Path...>> {
    static constexpr bool refuse() noexcept { return sizeof(cannot_send<T, Part, Path...>) != 0; }
};

template <bool (*)() noexcept>
inline constexpr bool named = true;

// What the codec's entry points assert, and protocol<Ts...> for each of its Ts: always
// true. Naming refuse() (a template argument instantiates it, constexpr) says the error
// once; evaluating it would make every assertion of checked<T> fail too, under clang.
template <class T>
inline constexpr bool checked = named<&refusal<T>::refuse>;

}  // namespace detail

// Whether the codec encodes every part of T.
template <class T>
inline constexpr bool sendable = std::is_same_v<typename detail::unsendable_in<T>::type, detail::nothing_unsendable>;

}  // namespace cluster::wire
