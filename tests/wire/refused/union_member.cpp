// expect: a union cannot be sent, as the receiver could not tell which member is live: use std::variant
// expect: cannot_send<shop::price, shop::amount, &shop::price::value>
//
// A union would be sent as bytes whose meaning the receiver cannot know: the error says to
// use std::variant. (Encoded with the wire layer alone.)
#include <cluster/wire.hpp>

#include <cstdint>

namespace shop {
union amount {
    std::int64_t cents;
    double units;
};
struct price {
    std::uint32_t currency = 0;
    amount value{};
};
BOOST_DESCRIBE_STRUCT(price, (), (currency, value))
}  // namespace shop

void encode(const shop::price& p, cluster::wire::buffer& out) { cluster::wire::encode(p, out); }
