// expect: a reference cannot be sent: send the value, or an id of it
// expect: cannot_send<shop::parcel, std::reference_wrapper<const shop::person>, &shop::parcel::courier>
//
// A reference is an address in the sender's memory; std::reference_wrapper has no default
// constructor either, and the message then has none: still one error, about the reference.
// (Received by a worker.)
#include <cluster/cluster.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace shop {
struct person {
    std::string name;
};
struct parcel {
    std::uint64_t id = 0;
    std::optional<std::reference_wrapper<const person>> courier;
};
BOOST_DESCRIBE_STRUCT(parcel, (), (id, courier))
}  // namespace shop

using proto = cluster::protocol<shop::parcel>;

cluster::task<> deliver(cluster::worker<proto>& w) {
    while (auto m = co_await w.receive()) {}
}
