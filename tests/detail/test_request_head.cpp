// The request head scanner: a header (the first of a list), a cookie among several, a query
// parameter, an absent key, a head cut short, bytes that are not HTTP, and a head past the peek.
#include <catch2/catch.hpp>

#include <cluster/detail/request_head.hpp>

#include <string>
#include <string_view>

using cluster::detail::find_key;
using cluster::detail::head_scan;
using cluster::net::sticky_key;

namespace {

const std::string head = "GET /cart?item=7&sid=q42&x HTTP/1.1\r\n"
                         "Host: example.com\r\n"
                         "x-forwarded-for: 203.0.113.9 , 10.0.0.1\r\n"
                         "Cookie: theme=dark; sid=\"c0ffee\"\r\n"
                         "Cookie: lang=en\r\n"
                         "\r\n"
                         "body that is not looked at";

}  // namespace

TEST_CASE("a header's value, and of a list the first, whatever the name's case") {
    auto k = find_key(head, sticky_key::header("X-Forwarded-For"));
    CHECK(k.state == head_scan::found);
    CHECK(k.value == "203.0.113.9");
    k = find_key(head, sticky_key::header("host"));
    CHECK(k.state == head_scan::found);
    CHECK(k.value == "example.com");
}

TEST_CASE("a cookie among several, in any Cookie header, unquoted") {
    auto k = find_key(head, sticky_key::cookie("sid"));
    CHECK(k.state == head_scan::found);
    CHECK(k.value == "c0ffee");
    k = find_key(head, sticky_key::cookie("lang"));
    CHECK(k.state == head_scan::found);
    CHECK(k.value == "en");
    CHECK(find_key(head, sticky_key::cookie("SID")).state == head_scan::absent);  // cookie names are exact
}

TEST_CASE("a query parameter, from the request line alone") {
    auto k = find_key("GET /a?sid=q42#frag HTTP/1.0\r\n", sticky_key::query("sid"));
    CHECK(k.state == head_scan::found);
    CHECK(k.value == "q42");
    k = find_key(head, sticky_key::query("item"));
    CHECK(k.state == head_scan::found);
    CHECK(k.value == "7");
    CHECK(find_key(head, sticky_key::query("x")).state == head_scan::absent);  // no value to key by
}

TEST_CASE("an absent key, once the head (or for a query its first line) is complete") {
    CHECK(find_key(head, sticky_key::header("X-Real-IP")).state == head_scan::absent);
    CHECK(find_key(head, sticky_key::cookie("session")).state == head_scan::absent);
    CHECK(find_key("GET /cart HTTP/1.1\r\n", sticky_key::query("sid")).state == head_scan::absent);
    CHECK(find_key("GET / HTTP/1.1\nX-Forwarded-For:\n\n", sticky_key::header("X-Forwarded-For")).state ==
          head_scan::absent);
}

TEST_CASE("a head cut short is incomplete, anywhere before the key or its end") {
    for (std::size_t cut = 0; cut < head.find("Cookie:"); ++cut) {
        INFO("cut at " << cut);
        CHECK(find_key(std::string_view(head).substr(0, cut), sticky_key::cookie("sid")).state ==
              head_scan::incomplete);
    }
    CHECK(find_key("GET /?sid=1 HTT", sticky_key::query("sid")).state == head_scan::incomplete);
    // A header line that has not ended yet may go on: its value is not taken.
    CHECK(find_key("GET / HTTP/1.1\r\nCookie: sid=ab", sticky_key::cookie("sid")).state == head_scan::incomplete);
}

TEST_CASE("bytes that are not an HTTP/1.x request head") {
    const auto sid = sticky_key::cookie("sid");
    CHECK(find_key(std::string_view("\x16\x03\x01\x02\x00", 5), sid).state == head_scan::not_http);  // TLS
    CHECK(find_key("hello world\n", sid).state == head_scan::not_http);
    CHECK(find_key("GET / HTTP/2.0\r\n", sid).state == head_scan::not_http);
    CHECK(find_key("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", sid).state == head_scan::not_http);
    CHECK(find_key("GET / HTTP/1.1\r\nno colon here\r\n\r\n", sid).state == head_scan::not_http);
    CHECK(find_key("GET /a\x01 b", sid).state == head_scan::not_http);        // caught before the line ends
    CHECK(find_key(std::string(64, 'A'), sid).state == head_scan::not_http);  // no method is that long
}

TEST_CASE("a head longer than the peek: the key in the bytes peeked, or not yet seen") {
    const std::string big = "GET / HTTP/1.1\r\nX-Pad: " + std::string(8000, 'p') + "\r\nCookie: sid=late\r\n\r\n";
    const std::string_view first_4k = std::string_view(big).substr(0, 4096);
    CHECK(find_key(first_4k, sticky_key::cookie("sid")).state == head_scan::incomplete);
    CHECK(find_key(big, sticky_key::cookie("sid")).value == "late");
    const std::string early = "GET / HTTP/1.1\r\nCookie: sid=early\r\nX-Pad: " + std::string(8000, 'p') + "\r\n\r\n";
    const auto k = find_key(std::string_view(early).substr(0, 4096), sticky_key::cookie("sid"));
    CHECK(k.state == head_scan::found);
    CHECK(k.value == "early");
}

TEST_CASE("a whole request head's method and target, incomplete until its empty line, not HTTP at once") {
    using cluster::detail::scan_request;
    const auto whole = scan_request(head);
    CHECK(whole.state == head_scan::found);
    CHECK(whole.method == "GET");
    CHECK(whole.target == "/cart?item=7&sid=q42&x");
    const auto bare = scan_request("POST /metrics HTTP/1.0\n\n");
    CHECK(bare.state == head_scan::found);
    CHECK(bare.method == "POST");
    CHECK(scan_request("").state == head_scan::incomplete);
    CHECK(scan_request("GET /metr").state == head_scan::incomplete);
    CHECK(scan_request("GET /metrics HTTP/1.1\r\nHost: x\r\n").state == head_scan::incomplete);
    CHECK(scan_request("\x16\x03\x01").state == head_scan::not_http);
    CHECK(scan_request("GET /metrics\r\n\r\n").state == head_scan::not_http);
    CHECK(scan_request("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n").state == head_scan::not_http);
    CHECK(scan_request("GET /metrics HTTP/1.1\r\nbad name: x\r\n\r\n").state == head_scan::not_http);
}
