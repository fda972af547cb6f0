// cluster::detail::clone_message() and boxed_value(): a message for a thread worker — a copy, each
// fd it holds dup'd as SCM_RIGHTS would; or, given away, the sender's own object moved, fds and all.
#pragma once

#include <fcntl.h>

#include <array>
#include <map>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <boost/describe/members.hpp>
#include <boost/describe/modifiers.hpp>
#include <boost/mp11/algorithm.hpp>

#include <cluster/hand_over.hpp>
#include <cluster/unique_fd.hpp>

namespace cluster::detail {

template <class T>
T clone_message(const T& m);

namespace clone_parts {

// Whether T's copy constructor compiles: std::is_copy_constructible says yes for a vector or a
// map of move-only values, whose copy constructor is declared but does not compile.
template <class T>
constexpr bool copyable();

template <class T>
struct copyable_of {
    static constexpr bool value = [] {
        if constexpr (!std::is_copy_constructible_v<T>) {
            return false;
        } else if constexpr (boost::describe::has_describe_members<T>::value) {
            using members = boost::describe::describe_members<T, boost::describe::mod_public>;
            bool all = true;
            boost::mp11::mp_for_each<members>(
                [&](auto d) { all = all && copyable<std::remove_cvref_t<decltype(std::declval<T&>().*d.pointer)>>(); });
            return all;
        } else {
            return true;
        }
    }();
};
template <class T, class A>
struct copyable_of<std::vector<T, A>> {
    static constexpr bool value = copyable<T>();
};
template <class K, class V, class C, class A>
struct copyable_of<std::map<K, V, C, A>> {
    static constexpr bool value = copyable<K>() && copyable<V>();
};
template <class T, std::size_t N>
struct copyable_of<std::array<T, N>> {
    static constexpr bool value = copyable<T>();
};
template <class... Ts>
struct copyable_of<std::variant<Ts...>> {
    static constexpr bool value = (copyable<Ts>() && ...);
};

template <class T>
constexpr bool copyable() {
    return copyable_of<T>::value;
}

template <class T>
struct of {
    static T copy(const T& m) {
        if constexpr (copyable<T>()) {
            return m;
        } else {
            static_assert(boost::describe::has_describe_members<T>::value,
                          "cluster: a message sent to a thread worker is copied, its fds dup'd: this type is "
                          "neither copyable nor a described struct of such members");
            T out{};
            using members = boost::describe::describe_members<T, boost::describe::mod_public>;
            boost::mp11::mp_for_each<members>([&](auto d) { out.*d.pointer = clone_message(m.*d.pointer); });
            return out;
        }
    }
};

template <>
struct of<unique_fd> {
    static unique_fd copy(const unique_fd& fd) {
        return fd ? unique_fd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0)) : unique_fd();
    }
};

template <class T>
struct of<std::vector<T>> {
    static std::vector<T> copy(const std::vector<T>& v) {
        if constexpr (copyable<T>()) {
            return v;
        } else {
            std::vector<T> out;
            out.reserve(v.size());
            for (const auto& e : v) out.push_back(clone_message(e));
            return out;
        }
    }
};

template <class T>
struct of<std::optional<T>> {
    static std::optional<T> copy(const std::optional<T>& v) {
        if (!v) return std::nullopt;
        return clone_message(*v);
    }
};

}  // namespace clone_parts

// Copies m; a move-only part (a unique_fd, a container or described struct holding one) is
// rebuilt with its fds dup'd. A dup that fails (at the descriptor limit) leaves that fd empty,
// as the kernel leaves out an fd it cannot install (MSG_CTRUNC).
template <class T>
T clone_message(const T& m) {
    return clone_parts::of<T>::copy(m);
}

// What a thread's box holds of a message passed as T&&: the message itself if the sender gave it
// away (no copy, and its fds are the same descriptors), otherwise its clone.
template <class T>
std::remove_cvref_t<T> boxed_value(T&& m) {
    if constexpr (given_away<T>)
        return std::move(m);
    else
        return clone_message(m);
}

}  // namespace cluster::detail
