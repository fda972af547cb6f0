// libFuzzer target for the wire layer: arbitrary bytes as frame headers and as payloads
// of a nested protocol. Any crash, sanitizer report or broken invariant is a bug.
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <cluster/wire.hpp>

namespace fuzz {

enum class kind : std::uint8_t { alpha = 1, beta = 2, gamma = 200 };
BOOST_DESCRIBE_ENUM(kind, alpha, beta, gamma)

struct point {
    float x = 0;
    float y = 0;
};
BOOST_DESCRIBE_STRUCT(point, (), (x, y))

struct named {
    std::string name;
    kind k = kind::alpha;
};
BOOST_DESCRIBE_STRUCT(named, (), (name, k))

struct shape : named {
    std::vector<point> corners;
    std::optional<bool> closed;
};
BOOST_DESCRIBE_STRUCT(shape, (named), (corners, closed))

struct document {
    std::uint64_t id = 0;
    std::vector<std::variant<shape, point, std::string, std::monostate>> items;
    std::map<std::string, std::vector<std::optional<std::int16_t>>> index;
    std::array<std::uint32_t, 3> counters{};
    std::chrono::milliseconds timeout{};
    std::vector<std::uint8_t> blob;
};
BOOST_DESCRIBE_STRUCT(document, (), (id, items, index, counters, timeout, blob))

struct with_fd {
    cluster::unique_fd fd;
    std::vector<std::optional<cluster::unique_fd>> more;
};
BOOST_DESCRIBE_STRUCT(with_fd, (), (fd, more))

using proto = cluster::protocol<document, with_fd, shape>;

// A decoded value must re-encode to exactly the bytes it consumed (maps and fd indexes may
// be ordered differently, never sized differently).
template <class T>
void check_decode(std::span<const std::byte> bytes) {
    std::vector<cluster::unique_fd> fds;
    fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    auto r = cluster::wire::decode<T>(bytes, fds);
    if (r && cluster::wire::encoded_size(*r) != bytes.size()) std::abort();
    if (!r && r.error().code.category() != cluster::cluster_category()) std::abort();
}

}  // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace wire = cluster::wire;
    const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);

    if (auto h = wire::parse_header(bytes)) {
        if (!wire::header_is_valid(*h)) std::abort();
        // Steer the frame at a real message type so the fingerprint check passes sometimes.
        using namespace fuzz;
        const auto payload = bytes.subspan(wire::frame_header_size);
        const std::uint32_t ids[] = {proto::id<document>, proto::id<with_fd>, proto::id<shape>};
        const std::uint64_t prints[] = {proto::fingerprint<document>, proto::fingerprint<with_fd>,
                                        proto::fingerprint<shape>};
        const std::size_t pick = h->type_id % 3;
        std::vector<cluster::unique_fd> fds;
        fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        (void)proto::decode(ids[pick], (h->flags & 1) != 0 ? h->fingerprint : prints[pick], payload, fds);
    }

    if (size == 0) return 0;
    const auto payload = bytes.subspan(1);
    switch (data[0] % 3) {
    case 0: fuzz::check_decode<fuzz::document>(payload); break;
    case 1: fuzz::check_decode<fuzz::with_fd>(payload); break;
    default: fuzz::check_decode<fuzz::shape>(payload); break;
    }
    return 0;
}
