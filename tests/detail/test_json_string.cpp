// detail::append_json_string: whatever bytes a worker printed become a JSON string that
// Boost.JSON parses back — to the same text when it was UTF-8, with U+FFFD where it was not.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cluster/detail/json_string.hpp>

#include <string>
#include <string_view>

using cluster::detail::append_json_string;

namespace {

std::string json_of(std::string_view bytes) {
    std::string out;
    append_json_string(out, bytes);
    return out;
}

// What a JSON parser reads back from the string append_json_string wrote.
std::string parsed(std::string_view bytes) {
    boost::system::error_code ec;
    const auto v = boost::json::parse(json_of(bytes), ec);
    INFO(json_of(bytes));
    REQUIRE(!ec);
    REQUIRE(v.is_string());
    return std::string(v.as_string());
}

const std::string replacement = "\xEF\xBF\xBD";

}  // namespace

TEST_CASE("plain text is quoted as it is") {
    CHECK(json_of("hello world") == "\"hello world\"");
    CHECK(json_of("") == "\"\"");
}

TEST_CASE("quotes, backslashes and control characters are escaped and read back") {
    CHECK(json_of("say \"hi\" \\ bye") == R"("say \"hi\" \\ bye")");
    CHECK(json_of("a\tb\rc\nd") == R"("a\tb\rc\nd")");
    CHECK(json_of(std::string_view("\0\x01\x1b\x7f", 4)) == R"("\u0000\u0001\u001b\u007f")");
    std::string every_control;
    for (int c = 0; c < 0x20; ++c) every_control.push_back(static_cast<char>(c));
    CHECK(parsed(every_control) == every_control);
}

TEST_CASE("UTF-8 stays as it is, and each byte that starts no character becomes U+FFFD") {
    CHECK(parsed("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    CHECK(parsed("a\xFF"
                 "b") == "a" + replacement + "b");
    CHECK(parsed("\xC3") == replacement);                                      // cut short
    CHECK(parsed("\xC0\xAF") == replacement + replacement);                    // overlong '/'
    CHECK(parsed("\xED\xA0\x80") == replacement + replacement + replacement);  // a surrogate
}
