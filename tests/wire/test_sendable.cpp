// sendable<T>: what the codec encodes, through every family with parts, and where the walk
// finds the first part it cannot (the compile errors themselves: tests/wire/refused/).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <variant>
#include <vector>

#include <cluster/wire.hpp>

#include "support/messages.hpp"

namespace sendable_test {

enum class undescribed_colour { red };
struct undescribed {
    int x = 0;
};
struct holder {
    std::uint64_t id = 0;
    std::vector<std::map<std::string, std::optional<std::variant<int, std::string*>>>> deep;
};
BOOST_DESCRIBE_STRUCT(holder, (), (id, deep))
struct derived_holder : holder {
    int extra = 0;
};
BOOST_DESCRIBE_STRUCT(derived_holder, (holder), (extra))

}  // namespace sendable_test

using namespace sendable_test;
using cluster::wire::sendable;
using cluster::wire::step;
using cluster::wire::detail::unsendable_in;
using cluster::wire::detail::unsendable_part;

TEST_CASE("the messages and std types the codec encodes are sendable", "[wire][sendable]") {
    STATIC_REQUIRE(sendable<support::job>);
    STATIC_REQUIRE(sendable<support::pipe_end>);
    STATIC_REQUIRE(sendable<std::map<std::string, std::vector<std::optional<support::job>>>>);
    STATIC_REQUIRE(sendable<std::unordered_map<int, std::array<std::variant<std::monostate, bool>, 2>>>);
    STATIC_REQUIRE(sendable<std::chrono::milliseconds>);
    STATIC_REQUIRE(sendable<cluster::shared_bytes>);
}

TEST_CASE("a part no codec encodes makes every type around it unsendable", "[wire][sendable]") {
    STATIC_REQUIRE_FALSE(sendable<int*>);
    STATIC_REQUIRE_FALSE(sendable<undescribed>);
    STATIC_REQUIRE_FALSE(sendable<undescribed_colour>);
    STATIC_REQUIRE_FALSE(sendable<std::vector<std::unique_ptr<int>>>);
    STATIC_REQUIRE_FALSE(sendable<std::map<std::string_view, int>>);
    STATIC_REQUIRE_FALSE(sendable<std::optional<std::set<int>>>);
    STATIC_REQUIRE_FALSE(sendable<std::variant<int, std::function<void()>>>);
    STATIC_REQUIRE_FALSE(sendable<holder>);
    STATIC_REQUIRE_FALSE(sendable<derived_holder>);
}

TEST_CASE("the walk finds the first unsendable part, with the members and steps that lead to it", "[wire][sendable]") {
    STATIC_REQUIRE(
        std::is_same_v<unsendable_in<holder>::type,
                       unsendable_part<std::string*, &holder::deep, step::element, step::value, step::alternative>>);
    // A base's members are named by the base, as the codec flattens them into the derived_holder.
    STATIC_REQUIRE(
        std::is_same_v<unsendable_in<derived_holder>::type,
                       unsendable_part<std::string*, &holder::deep, step::element, step::value, step::alternative>>);
}
