// expect: a smart pointer cannot be sent: send the value, in a std::optional if it may be missing
// expect: cannot_send<shop::catalogue, std::unique_ptr<shop::product>, &shop::catalogue::products,
// expect: cluster::wire::step::value>
//
// A map's values hold unique_ptrs: the path goes through the map's values. (Broadcast to
// the other workers.)
#include <cluster/cluster.hpp>

#include <map>
#include <memory>
#include <string>

namespace shop {
struct product {
    std::string name;
};
BOOST_DESCRIBE_STRUCT(product, (), (name))
struct catalogue {
    std::map<std::string, std::unique_ptr<product>> products;
};
BOOST_DESCRIBE_STRUCT(catalogue, (), (products))
}  // namespace shop

using proto = cluster::protocol<shop::catalogue>;

cluster::task<> publish(cluster::worker<proto>& w, const shop::catalogue& c) {
    auto sent = co_await w.broadcast(c);
    (void)sent;
}
