// cluster::detail::request_head: a small bounded scanner of an HTTP/1.x request head's first
// line and headers, which finds a sticky key in it (a header, a cookie, a query parameter),
// or says whether the head is whole and what it asks for (the primary's /metrics).
#pragma once

#include <cluster/config.hpp>

#include <string_view>

#include <cluster/net/sticky_key.hpp>

namespace cluster::detail {

enum class head_scan {
    found,       // the key is there
    absent,      // the head is complete (or its first line is, for a query), and has no such key
    incomplete,  // more bytes might show it
    not_http,    // the bytes are not the start of an HTTP/1.x request
};

struct key_in_head {
    head_scan state = head_scan::incomplete;
    std::string_view value;  // found: the key's value, inside the scanned bytes
};

// Where `key` is in `head`, the first bytes of a connection. It reads nothing past the line
// that shows the key, and never past `head`: a head cut short is incomplete, whatever its size.
CLUSTER_DECL key_in_head find_key(std::string_view head, const net::sticky_key& key) noexcept;

struct request_line {
    head_scan state = head_scan::incomplete;  // found: the head is whole (up to its empty line)
    std::string_view method;                  // found: inside the scanned bytes
    std::string_view target;
};

// What `head` asks for, once it holds a whole request head; incomplete before, not_http as
// soon as a line shows it is none. Header values are not looked at.
CLUSTER_DECL request_line scan_request(std::string_view head) noexcept;

}  // namespace cluster::detail

#if defined(CLUSTER_HEADER_ONLY)
#include <cluster/detail/impl/request_head.ipp>
#endif
