// refused by: GNU before 14
// expect: cluster: GCC 12 destroys a braced temporary twice when it is inside co_await
// expect: name the message first — `job j{...}; co_await h.request<R>(j);`
// expect: or give its type a constructor
// expect: braced_request.cpp:31:
//
// A request whose message is a braced temporary with a std::string in it: GCC 12 compiled
// this line without a word, then freed the string twice once the reply came. Under GCC 12
// and 13 the library refuses it, with an error at this line saying what to write instead;
// clang compiles it, and cluster/awaited_temporaries runs it under AddressSanitizer.
#include <cluster/cluster.hpp>

#include <chrono>
#include <cstdint>
#include <string>

struct job {
    std::uint64_t id = 0;
    std::string text;
};
struct answer {
    std::uint64_t id = 0;
};
BOOST_DESCRIBE_STRUCT(job, (), (id, text))
BOOST_DESCRIBE_STRUCT(answer, (), (id))
using proto = cluster::protocol<job, answer>;
using R = answer;
using namespace std::chrono_literals;

cluster::task<> ask(cluster::worker_handle<proto>& h, std::uint64_t i) {
    auto r = co_await h.request<R>(job{i, "text"}, 2s);
    (void)r;
}
