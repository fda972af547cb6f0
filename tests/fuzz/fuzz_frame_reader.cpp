// libFuzzer target for the channel's receive path: arbitrary bytes cut into arbitrary
// receives, with fds sprinkled in, go through frame_reader and the protocol decoder.
// Any crash, sanitizer report, leaked fd or broken invariant is a bug.
#include <fcntl.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <cluster/ipc/frame_reader.hpp>
#include <cluster/wire.hpp>

namespace fuzz {

struct hello {
    std::uint64_t id = 0;
    std::string text;
};
BOOST_DESCRIBE_STRUCT(hello, (), (id, text))

struct with_fd {
    std::vector<std::uint32_t> numbers;
    cluster::unique_fd fd;
};
BOOST_DESCRIBE_STRUCT(with_fd, (), (numbers, fd))

// Inline bytes (shared with a large frame's buffer when big enough) or a memfd by fd:
// the fds sprinkled in are /dev/null, which must be refused, never mapped.
struct with_bytes {
    cluster::shared_bytes bytes;
    std::string tail;
};
BOOST_DESCRIBE_STRUCT(with_bytes, (), (bytes, tail))

using proto = cluster::protocol<hello, with_fd, with_bytes>;

}  // namespace fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    // The first byte shapes the receives (their sizes and when fds arrive) and whether plain
    // frames are taken where they lie first, as a channel takes them; the rest is the stream.
    const std::uint8_t shape = data[0];
    const std::size_t step = 1 + (shape & 0x1f);
    data += 1;
    size -= 1;

    cluster::ipc::frame_reader reader(4096, 64);
    std::size_t fed = 0, receives = 0;
    while (fed < size) {
        auto room = reader.writable();
        if (room.empty()) std::abort();
        const std::size_t n = std::min({room.size(), step, size - fed});
        std::memcpy(room.data(), data + fed, n);
        reader.commit(n);
        fed += n;
        if ((shape & 0x80) && ++receives % 3 == 0) {
            std::vector<cluster::unique_fd> fds;
            fds.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
            reader.add_fds(fds, (shape & 0x40) != 0);
        }
        for (;;) {
            if (const std::byte* plain = (shape & 0x20) ? reader.plain_frame() : nullptr) {
                const cluster::wire::header_view h(plain);
                if (h.payload_size() > 4096 || h.fd_count() != 0) std::abort();
                bool failed = false;
                auto decoded = cluster::wire::decode_plain_frame_in_place<fuzz::proto>(
                    plain, [&](cluster::wire::decode_error&& e) {
                        if (!e.code) std::abort();  // a failure always says why
                        failed = true;
                    });
                if (!decoded && !failed) std::abort();
                reader.skip(cluster::wire::frame_header_size + h.payload_size());
                continue;
            }
            auto next = reader.next();
            if (!next) {
                if (!next.error().code) std::abort();  // a failure always says why
                return 0;
            }
            if (!*next) {
                (void)reader.holds_stray_fds();
                break;
            }
            const auto& f = **next;
            if (f.header.payload_size > 4096 || f.fds.size() > f.header.fd_count) std::abort();
            auto decoded = cluster::wire::decode_frame<fuzz::proto>(f.header, f.payload, f.fds, f.owner);
            if (!decoded && !decoded.error().code) std::abort();
            reader.consume();
        }
    }
    return 0;
}
