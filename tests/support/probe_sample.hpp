// support: the small message the inlined/ checks compile a user's program around — a few
// scalars, a short string and a fixed array, as a typical job or event message has.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <boost/describe/class.hpp>

#include <cluster/wire/protocol.hpp>

namespace probe {
struct sample {
    std::uint64_t id = 0;
    std::uint32_t kind = 0;
    double value = 0;
    std::string name;
    std::array<std::int32_t, 7> v{};
};
BOOST_DESCRIBE_STRUCT(sample, (), (id, kind, value, name, v))
}  // namespace probe

using proto = cluster::wire::protocol<probe::sample>;
