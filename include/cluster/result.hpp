// cluster::result<T>: a value or the std::error_code saying why there is none.
// Expected failures are values; .value() turns them into std::system_error at the edge.
#pragma once

#include <system_error>

#include <boost/system/result.hpp>

namespace cluster {

template <class T>
using result = boost::system::result<T, std::error_code>;

}  // namespace cluster
