// bench_types::sample: the "small typed message" of the IPC and thread figures (ipc_bench,
// thread_bench), which encodes to 64 bytes — a few scalars, a short string, a fixed array.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include <boost/describe.hpp>

namespace bench_types {

struct sample {
    std::uint64_t id = 0;
    std::uint32_t kind = 0;
    double value = 0;
    std::string name;
    std::array<std::int32_t, 7> v{};
};
BOOST_DESCRIBE_STRUCT(sample, (), (id, kind, value, name, v))

}  // namespace bench_types
