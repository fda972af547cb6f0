// expect: a raw pointer cannot be sent: send an id or a std::string
// expect: cannot_send<shop::order,
// expect: &shop::order::items, cluster::wire::step::element, &shop::item::owner>
//
// An order's items each point to their owner: the pointer, two levels down, is named with
// the path to it, in one error, however far the message goes (here, a request to a worker).
#include <cluster/cluster.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace shop {
struct person {
    std::string name;
};
struct item {
    std::string sku;
    person* owner = nullptr;
};
BOOST_DESCRIBE_STRUCT(item, (), (sku, owner))
struct order {
    std::uint64_t id = 0;
    std::vector<item> items;
};
BOOST_DESCRIBE_STRUCT(order, (), (id, items))
struct receipt {
    std::uint64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(receipt, (), (id))
}  // namespace shop

using proto = cluster::protocol<shop::order, shop::receipt>;

cluster::task<> checkout(cluster::worker_handle<proto>& h) {
    const shop::order o{1, {}};
    auto r = co_await h.request<shop::receipt>(o, std::chrono::seconds(2));
    (void)r;
}
