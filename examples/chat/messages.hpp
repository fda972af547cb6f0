// chat's messages between a primary and its workers: what a client said, on its way to the
// primary, and what every client is to hear, on its way to each worker.
#pragma once

#include <cluster/cluster.hpp>

#include <boost/describe/class.hpp>

#include <string>

namespace chat {

// Worker to primary: a text message a client sent, verbatim.
struct said {
    std::string text;
};
BOOST_DESCRIBE_STRUCT(said, (), (text))

// Primary to each of its workers: a message for every client, from this instance or another.
struct heard {
    std::string text;
};
BOOST_DESCRIBE_STRUCT(heard, (), (text))

using protocol = cluster::protocol<said, heard>;

}  // namespace chat
