// cluster::wire::decode_error and decode_result<T>: why a message did not decode, and where.
// The path ("job.tags[3]") is assembled only while unwinding a failure, never on success.
#pragma once

#include <string>
#include <system_error>
#include <utility>

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <cluster/error.hpp>

namespace cluster::wire {

struct decode_error {
    std::error_code code;
    std::string path;  // the field that failed, rooted at the message type; may be empty

    [[nodiscard]] std::string message() const { return path.empty() ? code.message() : path + ": " + code.message(); }

    friend bool operator==(const decode_error& e, errc c) noexcept { return e.code == c; }
};

// Found by ADL when .value() is called on an error: the user gets the whole story.
[[noreturn]] inline void throw_exception_from_error(const decode_error& e, const boost::source_location&) {
    if (e.path.empty()) throw std::system_error(e.code);
    throw std::system_error(e.code, e.path);
}

template <class T>
using decode_result = boost::system::result<T, decode_error>;

}  // namespace cluster::wire
