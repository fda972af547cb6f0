// cluster::io::refuse_awaited_temporary<T>(): the compile-time refusal, under GCC 12 and 13,
// of a temporary that GCC destroys twice when the call it is passed to is inside co_await.
#pragma once

#include <type_traits>

// GCC's coroutine lowering gives each member of a braced temporary aggregate in a co_await
// expression a cleanup of its own, besides the aggregate's destructor; both run after the
// resumption, and a std::string member is freed twice (GCC bug 101976, also 100611 and
// 101367, whose regression tests are this very pattern). The callee cannot help, whatever
// its signature: only the caller can, by naming the object. GCC 12 has the bug; we could
// not establish which release fixed it, so GCC 13 is refused too. clang has no such bug.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 14
#define CLUSTER_REFUSES_AWAITED_TEMPORARIES 1
#endif

namespace cluster::io {

// Whether an argument that deduced T, as a T&& parameter does, is a temporary that the bug
// corrupts: an aggregate rvalue with something to destroy. A function's result or a
// std::move()d name is safe, but the type system cannot tell them from a braced temporary,
// so they are refused too (cluster::hand_over(name) gives a name away instead); a named
// object, or a type with a constructor, is never refused.
template <class T>
inline constexpr bool destroyed_twice_when_awaited =
#ifdef CLUSTER_REFUSES_AWAITED_TEMPORARIES
    !std::is_lvalue_reference_v<T> && std::is_aggregate_v<std::remove_cvref_t<T>> &&
    !std::is_trivially_destructible_v<std::remove_cvref_t<T>>;
#else
    false;
#endif

// Called first by every function whose result is meant to be awaited and that takes a
// message as T&&: one error, at the caller's line, instead of a double free at run time.
template <class T>
constexpr void refuse_awaited_temporary() noexcept {
    static_assert(!destroyed_twice_when_awaited<T>,
                  "cluster: GCC 12 destroys a braced temporary twice when it is inside co_await (GCC bug "
                  "101976), and a temporary of this type cannot be told from one: name the message first — "
                  "`job j{...}; co_await h.request<R>(j);` — or give its type a constructor; to give a named "
                  "message away, pass cluster::hand_over(j) rather than std::move(j)");
}

}  // namespace cluster::io
