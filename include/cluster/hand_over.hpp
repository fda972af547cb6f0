// cluster::hand_over(msg): a named message given to send(), send_to(), request() or reply() to be
// moved, as std::move(msg) would be, in a form GCC 12's refusal of awaited temporaries lets through.
#pragma once

#include <type_traits>
#include <utility>

namespace cluster {

// A message its sender gives away: the send takes it as an rvalue. Holds a reference, so it
// has nothing to destroy, and io::refuse_awaited_temporary() never refuses it.
template <class M>
struct handed_over {
    M& message;
};

// `co_await h.send(cluster::hand_over(m))` sends m as `co_await h.send(std::move(m))` does: to
// a thread it travels as itself, its fds with it; m is left moved-from in every mode. Under GCC
// 12 and 13, where std::move(m) of an aggregate is refused (io/awaited_temporary.hpp), this is
// the way to move it. Only a named, non-const object can be handed over.
template <class M>
    requires(!std::is_const_v<M>)
[[nodiscard]] handed_over<M> hand_over(M& message) noexcept {
    return {message};
}

namespace detail {

template <class A>
struct message_type_of {
    using type = std::remove_cvref_t<A>;
};
template <class M>
struct message_type_of<handed_over<M>> {
    using type = M;
};

// The message a send's argument of type A (as a T&& parameter deduced it) carries.
template <class A>
using message_type = typename message_type_of<std::remove_cvref_t<A>>::type;

// The message in a send's argument, as the send takes it: an rvalue if it was one or was handed
// over, an lvalue otherwise.
template <class A>
[[nodiscard]] constexpr decltype(auto) forward_message(A&& arg) noexcept {
    if constexpr (std::is_same_v<message_type<A>, std::remove_cvref_t<A>>)
        return std::forward<A>(arg);
    else
        return std::move(arg.message);
}

// Whether a message passed as A&& (after forward_message) is the sender's to give away: an
// rvalue, not const. A const rvalue is copied, as a const object cannot be moved from.
template <class A>
inline constexpr bool given_away = !std::is_lvalue_reference_v<A> && !std::is_const_v<std::remove_reference_t<A>>;

}  // namespace detail

}  // namespace cluster
