// cluster::result<T>: a value or the std::error_code saying why there is none.
// Expected failures are values; .value() turns them into std::system_error at the edge.
#pragma once

#include <system_error>
#include <type_traits>

#include <boost/system/result.hpp>

namespace cluster {

template <class T>
using result = boost::system::result<T, std::error_code>;

// Whether T is some result<U>: generic code that wraps a value in a result, and must not
// wrap one twice.
template <class T>
inline constexpr bool is_result_v = false;
template <class T>
inline constexpr bool is_result_v<boost::system::result<T, std::error_code>> = true;

}  // namespace cluster
