// detail control answers: every answer is one line of JSON that a JSON parser takes — the
// status with its workers array and rates, errors with any text in them escaped and made UTF-8.
#include <catch2/catch.hpp>

#include <boost/json.hpp>
#include <boost/json/src.hpp>

#include <cluster/detail/control_answer.hpp>

#include <chrono>
#include <string>

using namespace cluster;
using namespace cluster::detail;
using namespace std::chrono_literals;

namespace {

boost::json::object parsed_line(const std::string& line) {
    REQUIRE(!line.empty());
    CHECK(line.back() == '\n');
    CHECK(line.find('\n') == line.size() - 1);
    return boost::json::parse(line).as_object();
}

worker_status a_worker(unsigned id, double cpu, std::uint64_t messages, std::chrono::seconds uptime) {
    worker_status w;
    w.id = id;
    w.slot = id;
    w.pid = static_cast<pid_t>(1000 + id);
    w.state = worker_state::ready;
    w.uptime = uptime;
    w.cpu_seconds = cpu;
    w.rss_bytes = 5u << 20;
    w.connections_open = 3;
    w.counts.messages_sent = messages;
    return w;
}

}  // namespace

TEST_CASE("a status answer has the cluster's figures and a workers array, each with its rates") {
    cluster_status before;
    before.workers = {a_worker(1, 1.0, 100, 10s)};
    cluster_status now;
    now.primary_pid = 42;
    now.uptime = 12s;
    now.workers_wanted = 2;
    now.exits = {{"crash", 1}, {"reload", 2}};
    now.signals = {{"SIGHUP", 2}};
    now.workers = {a_worker(1, 1.5, 300, 12s), a_worker(2, 1.0, 40, 4s)};
    const auto o = parsed_line(status_answer(now, &before, 2.0));
    CHECK(o.at("ok").as_bool());
    CHECK(o.at("primary_pid").as_int64() == 42);
    CHECK(o.at("window_seconds").to_number<double>() == Approx(2.0));
    CHECK(o.at("exits").at("reload").as_int64() == 2);
    CHECK(o.at("signals").at("SIGHUP").as_int64() == 2);
    const auto& workers = o.at("workers").as_array();
    REQUIRE(workers.size() == 2);
    const auto& known = workers[0].as_object();
    CHECK(known.at("id").as_int64() == 1);
    CHECK(known.at("state").as_string() == "ready");
    CHECK(known.at("connections").as_int64() == 3);
    CHECK(known.at("cpu_percent").to_number<double>() == Approx(25.0));  // 0.5 s of CPU in 2 s
    CHECK(known.at("messages_per_second").to_number<double>() == Approx(100.0));
    const auto& fresh = workers[1].as_object();  // not there 2 s ago: over its 4 s of life
    CHECK(fresh.at("cpu_percent").to_number<double>() == Approx(25.0));
    CHECK(fresh.at("messages_per_second").to_number<double>() == Approx(10.0));
}

TEST_CASE("the first status answer has no window: each worker's rates are over its life") {
    cluster_status now;
    now.workers = {a_worker(1, 3.0, 60, 6s)};
    const auto o = parsed_line(status_answer(now, nullptr, 0));
    CHECK(o.at("window_seconds").to_number<double>() == 0);
    CHECK(o.at("workers").as_array()[0].at("cpu_percent").to_number<double>() == Approx(50.0));
}

TEST_CASE("an error's text is escaped and made well-formed UTF-8") {
    const std::string text = std::string("a \"quoted\" \\ path\n\t\x01 and \xff bytes");
    const auto o = parsed_line(control_error(text));
    CHECK_FALSE(o.at("ok").as_bool());
    CHECK(o.at("error").as_string() == "a \"quoted\" \\ path\n\t\x01 and \xEF\xBF\xBD bytes");
}

TEST_CASE("numbers that JSON cannot spell are null") {
    const auto o = parsed_line(json_writer().number("x", 1.0 / 0.0).number("y", 0.5).line());
    CHECK(o.at("x").is_null());
    CHECK(o.at("y").to_number<double>() == 0.5);
}
