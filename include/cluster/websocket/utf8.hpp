// cluster::websocket::valid_utf8: whether bytes are well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), as a text message must be.
#pragma once

#include <cluster/detail/utf8.hpp>

#include <string_view>

namespace cluster::websocket {

inline bool valid_utf8(std::string_view text) noexcept { return detail::valid_utf8(text); }

}  // namespace cluster::websocket
