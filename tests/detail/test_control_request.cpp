// detail::parse_control_request: each command the control socket knows, and what it refuses —
// garbage, arguments where none belong, and a scale outside 1 to control_max_workers — with
// the limit named.
#include <catch2/catch.hpp>

#include <cluster/detail/control_request.hpp>

#include <string>
#include <variant>

using namespace cluster::detail;

namespace {

control_request accepted(const std::string& line) {
    auto parsed = parse_control_request(line);
    INFO(line);
    REQUIRE(std::holds_alternative<control_request>(parsed));
    return std::get<control_request>(parsed);
}

std::string refused(const std::string& line) {
    auto parsed = parse_control_request(line);
    INFO(line);
    REQUIRE(std::holds_alternative<control_refusal>(parsed));
    return std::get<control_refusal>(parsed).error;
}

}  // namespace

TEST_CASE("each command is one word, scale with a number, blanks and a CR around them left out") {
    CHECK(accepted("status").command == control_command::status);
    CHECK(accepted("reload").command == control_command::reload);
    CHECK(accepted("stop").command == control_command::stop);
    CHECK(accepted("upgrade").command == control_command::upgrade);
    CHECK(accepted("logs").command == control_command::logs);
    CHECK(accepted("  status \r").command == control_command::status);
    const auto s = accepted("scale 4");
    CHECK(s.command == control_command::scale);
    CHECK(s.workers == 4);
    CHECK(accepted("scale\t1").workers == 1);
    CHECK(accepted("scale 1024").workers == control_max_workers);
}

TEST_CASE("scale 0, scale past the limit, and scale without a plain number are refused, naming the limit") {
    CHECK(refused("scale 0") == "scale takes a number of workers from 1 to 1024, not 0");
    CHECK(refused("scale 100000") == "scale takes a number of workers from 1 to 1024, not 100000");
    CHECK(refused("scale 99999999999999999999999") ==
          "scale takes a number of workers from 1 to 1024, not 99999999999999999999999");
    for (const char* line : {"scale", "scale -1", "scale 4x", "scale 4 5", "scale four"})
        CHECK(refused(line) == "scale takes a number of workers from 1 to 1024");
}

TEST_CASE("unknown words, garbage and arguments where none belong are refused, listing the commands") {
    const std::string commands = "unknown command; the commands are status, reload, scale N, stop, upgrade and logs";
    CHECK(refused("") == commands);
    CHECK(refused("GET / HTTP/1.1") == commands);
    CHECK(refused(std::string("\x00\xff\x01", 3)) == commands);
    CHECK(refused("STATUS") == commands);
    CHECK(refused("status --json") == "status takes no argument");
    CHECK(refused("stop now") == "stop takes no argument");
}
