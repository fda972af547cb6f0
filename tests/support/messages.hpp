// support: the messages the wire, ipc and messaging tests send, described once — plain ones,
// ones with vectors, ones that carry fds — and `job` as an older build had it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/describe.hpp>

#include <cluster/unique_fd.hpp>

namespace support {

struct job {
    std::uint64_t id = 0;
    std::string text;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, text))

// What became of job `id`: a count (of its words, of its bytes).
struct answer {
    std::uint64_t id = 0;
    std::uint64_t count = 0;
};
BOOST_DESCRIBE_STRUCT(answer, (), (id, count))

struct tick {
    std::uint64_t seq = 0;
};
BOOST_DESCRIBE_STRUCT(tick, (), (seq))

struct chunk {
    std::uint64_t seq = 0;
    std::vector<std::uint8_t> bytes;
};
BOOST_DESCRIBE_STRUCT(chunk, (), (seq, bytes))

// A descriptor, and what it is for.
struct pipe_end {
    std::string label;
    cluster::unique_fd fd;
};
BOOST_DESCRIBE_STRUCT(pipe_end, (), (label, fd))

struct many_fds {
    std::vector<cluster::unique_fd> fds;
};
BOOST_DESCRIBE_STRUCT(many_fds, (), (fds))

// In no protocol: for what must not compile, or not decode.
struct not_in_protocol {
    std::uint64_t x = 0;
};
BOOST_DESCRIBE_STRUCT(not_in_protocol, (), (x))

namespace older {
// `job` from a stale build: the same name on the wire, other members.
struct job {
    static constexpr std::string_view cluster_name = "support::job";
    std::uint64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(job, (), (id))
}  // namespace older

}  // namespace support
