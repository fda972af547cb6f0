// cluster::detail utf8: the length of each well-formed character, none for what is not one,
// and text made well-formed by replacing each byte that starts no character with U+FFFD.
#include <catch2/catch.hpp>

#include <cluster/detail/utf8.hpp>

#include <string>

using namespace cluster::detail;

TEST_CASE("utf8: a character's length, and 0 where none starts") {
    CHECK(utf8_char_length("a") == 1);
    CHECK(utf8_char_length("\xC3\xA9x") == 2);
    CHECK(utf8_char_length("\xE2\x82\xAC") == 3);
    CHECK(utf8_char_length("\xF0\x9F\x98\x80") == 4);
    CHECK(utf8_char_length("") == 0);
    CHECK(utf8_char_length("\x80") == 0);              // a continuation byte
    CHECK(utf8_char_length("\xC0\xAF") == 0);          // overlong
    CHECK(utf8_char_length("\xED\xA0\x80") == 0);      // a surrogate
    CHECK(utf8_char_length("\xF4\x90\x80\x80") == 0);  // past U+10FFFF
    CHECK(utf8_char_length("\xE2\x82") == 0);          // cut short
}

TEST_CASE("utf8: replacing keeps well-formed text and puts U+FFFD for each stray byte") {
    std::string out;
    append_utf8_replacing(out, "ok \xC3\xA9");
    CHECK(out == "ok \xC3\xA9");
    out.clear();
    append_utf8_replacing(out, "a\xFF\xFE"
                               "b\xE2\x82");
    CHECK(out == "a\xEF\xBF\xBD\xEF\xBF\xBD"
                 "b\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(valid_utf8(out));
    CHECK_FALSE(valid_utf8("a\xFF"));
}
