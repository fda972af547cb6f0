// detail::line_splitter on its own: each line and how it ended (a newline, the length limit,
// the stream's end), whatever pieces the bytes came in.
#include <catch2/catch.hpp>

#include <cluster/detail/line_splitter.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace cluster;
using cluster::detail::line_splitter;

namespace {

using line = std::pair<std::string, line_end>;

struct collect {
    std::vector<line>& into;
    void operator()(std::string_view text, line_end end) const { into.emplace_back(std::string(text), end); }
};

// The lines of `text` when it comes `piece` bytes at a time, then ends.
std::vector<line> split(std::string_view text, std::size_t piece) {
    std::vector<line> out;
    line_splitter lines;
    for (std::size_t at = 0; at < text.size(); at += piece) lines.take(text.substr(at, piece), collect{out});
    lines.finish(collect{out});
    return out;
}

}  // namespace

TEST_CASE("each line says how it ended: its newline, the length limit, or the stream's end") {
    const std::string endless(output_line_limit + 10, 'x');
    const auto got = split("first\n\n" + endless + "\nlast", 4096);
    const std::vector<line> want{{"first", line_end::newline},
                                 {"", line_end::newline},
                                 {std::string(output_line_limit, 'x'), line_end::cut},
                                 {std::string(10, 'x'), line_end::newline},
                                 {"last", line_end::eof}};
    CHECK(got == want);
}

TEST_CASE("the same bytes give the same lines in whatever pieces they come") {
    std::string text;
    for (int i = 0; i < 300; ++i) text += std::string(static_cast<std::size_t>(i * 7 % 50), 'a') + "\n";
    text += std::string(output_line_limit * 2 + 3, 'b') + "\nno newline";
    const auto whole = split(text, text.size());
    REQUIRE(whole.size() == 300 + 3 + 1);
    for (std::size_t piece : {1u, 2u, 3u, 7u, 64u, 4096u, 65537u}) {
        INFO(piece << " bytes at a time");
        CHECK(split(text, piece) == whole);
    }
}

TEST_CASE("a stream that ends on its newline has no last line left over, and an empty one has none") {
    CHECK(split("one\n", 1) == std::vector<line>{{"one", line_end::newline}});
    CHECK(split("", 1).empty());
}
