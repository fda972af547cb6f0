// expect: a class that is not described cannot be sent: add BOOST_DESCRIBE_STRUCT(T, (bases...), (members...))
// expect: cannot_send<shop::customer, shop::address, &shop::customer::home>
//
// A customer's address is a struct of its own that nobody described: the error names it
// and the member that holds it, and says how to describe it. (Sent on a channel.)
#include <cluster/cluster.hpp>

#include <cstdint>
#include <string>

namespace shop {
struct address {
    std::string street;
    std::string city;
};
struct customer {
    std::uint64_t id = 0;
    address home;
};
BOOST_DESCRIBE_STRUCT(customer, (), (id, home))
}  // namespace shop

using proto = cluster::protocol<shop::customer>;

cluster::task<> tell(cluster::channel<proto>& ch) {
    const shop::customer c{};
    auto sent = co_await ch.send(c);
    (void)sent;
}
