// expect: a function object cannot be sent: send an enum or a name that says what to run
// expect: cannot_send<shop::job, std::function<void
// expect: >, &shop::job::then>
//
// Code does not travel in a message. (Its fingerprint, asked for on its own. g++ spells the
// part std::function<void()>, clang std::function<void ()>.)
#include <cluster/wire.hpp>

#include <cstdint>
#include <functional>

namespace shop {
struct job {
    std::uint64_t id = 0;
    std::function<void()> then;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, then))
}  // namespace shop

[[maybe_unused]] constexpr auto fingerprint = cluster::wire::fingerprint<shop::job>;
