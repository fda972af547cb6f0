// cluster::websocket::valid_utf8: well-formed text passes; overlong forms, surrogates, code
// points past U+10FFFF, stray continuation bytes and truncated sequences do not.
#include <catch2/catch.hpp>

#include <cluster/websocket/utf8.hpp>

#include <string_view>

using cluster::websocket::valid_utf8;
using namespace std::string_view_literals;

TEST_CASE("valid_utf8: ASCII, two to four byte characters and the edges of the range pass") {
    CHECK(valid_utf8(""));
    CHECK(valid_utf8("plain ASCII"));
    CHECK(valid_utf8("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"));
    CHECK(valid_utf8("\xc2\x80"));          // U+0080
    CHECK(valid_utf8("\xed\x9f\xbf"));      // U+D7FF, below the surrogates
    CHECK(valid_utf8("\xee\x80\x80"));      // U+E000, above them
    CHECK(valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
    CHECK(valid_utf8("nul\0inside"sv));
}

TEST_CASE("valid_utf8: overlong forms, surrogates, past U+10FFFF, stray and truncated bytes fail") {
    CHECK_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
    CHECK_FALSE(valid_utf8("\xe0\x80\xaf"));      // overlong, three bytes
    CHECK_FALSE(valid_utf8("\xf0\x80\x80\xaf"));  // overlong, four bytes
    CHECK_FALSE(valid_utf8("\xed\xa0\x80"));      // U+D800, a surrogate
    CHECK_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // U+110000
    CHECK_FALSE(valid_utf8("\xf5\x80\x80\x80"));
    CHECK_FALSE(valid_utf8("\x80"));         // a continuation byte alone
    CHECK_FALSE(valid_utf8("ok \xc3\x28"));  // a lead byte, then no continuation
    CHECK_FALSE(valid_utf8("\xe2\x9c"));     // cut short
    CHECK_FALSE(valid_utf8("\xff"));
}
