// detail::append_log_line: a relayed line as text ("[worker N] " and the worker's bytes) or as
// one JSON object, which Boost.JSON parses, with its fields, whatever the worker printed.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cluster/detail/log_line.hpp>

#include <chrono>
#include <string>
#include <string_view>

using namespace cluster;
using detail::append_log_line;
using detail::line_source;

namespace {

using std::chrono::system_clock;

// 2024-05-01T12:34:56.789Z
const system_clock::time_point when = system_clock::from_time_t(1714566896) + std::chrono::milliseconds(789);

const line_source worker_3_stderr{3, 2, 4242, stdio_stream::err};

std::string line_of(log_format f, const line_source& from, std::string_view text, line_end end) {
    std::string out;
    append_log_line(out, f, from, text, end, when);
    return out;
}

boost::json::object json_line(const line_source& from, std::string_view text, line_end end) {
    const std::string line = line_of(log_format::json, from, text, end);
    INFO(line);
    REQUIRE(line.ends_with('\n'));
    REQUIRE(line.find('\n') == line.size() - 1);  // one line, whatever the text had
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    REQUIRE(!ec);
    REQUIRE(v.is_object());
    return v.as_object();
}

}  // namespace

TEST_CASE("the time is RFC 3339 in UTC with milliseconds") {
    std::string out;
    detail::append_rfc3339(out, when);
    CHECK(out == "2024-05-01T12:34:56.789Z");
    out.clear();
    detail::append_rfc3339(out, system_clock::from_time_t(0));
    CHECK(out == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("a text line is the worker's bytes behind its prefix") {
    CHECK(line_of(log_format::text, worker_3_stderr, "hello \"x\"", line_end::newline) == "[worker 3] hello \"x\"\n");
    CHECK(line_of(log_format::text, worker_3_stderr, "cut", line_end::cut) == "[worker 3] cut\n");
}

TEST_CASE("a JSON line has the time, worker, slot, pid, stream, text and how it ended") {
    const auto o = json_line(worker_3_stderr, "say \"hi\"\t\\", line_end::newline);
    CHECK(o.at("time") == "2024-05-01T12:34:56.789Z");
    CHECK(o.at("worker") == 3);
    CHECK(o.at("slot") == 2);
    CHECK(o.at("pid") == 4242);
    CHECK(o.at("stream") == "stderr");
    CHECK(o.at("text") == "say \"hi\"\t\\");
    CHECK(o.at("end") == "newline");
    CHECK(o.size() == 7);
    CHECK(json_line(worker_3_stderr, "piece", line_end::cut).at("end") == "cut");
    CHECK(json_line(worker_3_stderr, "last", line_end::eof).at("end") == "eof");
}

TEST_CASE("a JSON line stays one valid line whatever the worker printed") {
    using namespace std::string_literals;
    const std::string nasty = "\x1b[31mred\x1b[0m \r\x00 \xFF\xFE bad \xC3"s;
    const auto o = json_line(worker_3_stderr, nasty, line_end::newline);
    const std::string text(o.at("text").as_string());
    CHECK(text.starts_with("\x1b[31mred\x1b[0m \r"));
    CHECK(text.find('\0') != std::string::npos);
    CHECK(text.ends_with(" bad \xEF\xBF\xBD"));
}

TEST_CASE("the primary's own line has no worker and no slot") {
    const line_source primary{0, 0, 99, stdio_stream::err};
    CHECK(line_of(log_format::text, primary, "cluster: note", line_end::newline) == "cluster: note\n");
    const auto o = json_line(primary, "cluster: note", line_end::newline);
    CHECK(!o.contains("worker"));
    CHECK(!o.contains("slot"));
    CHECK(o.at("pid") == 99);
    CHECK(o.at("text") == "cluster: note");
}
