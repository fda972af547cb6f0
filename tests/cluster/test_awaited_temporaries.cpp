// Requests whose message is a braced temporary holding a std::string, under AddressSanitizer
// in every configuration: clang runs the line as a user writes it, and g++, which is refused
// that line (cluster/refused: braced_request), runs the rewrite its error asks for.
#include <catch2/catch.hpp>

#include "support/messages.hpp"
#include "support/primary.hpp"

#include <cluster/cluster.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

using namespace cluster;
using namespace std::chrono_literals;
using support::answer;
using support::job;
using P = protocol<job, answer>;

namespace {

// Answers each job with its text's length. The answer is a braced temporary with nothing
// to destroy, which no compiler is refused.
task<void> measuring_worker(worker<P>& w) {
    while (auto m = co_await w.receive()) {
        if (const auto* j = m->get_if<job>()) (void)co_await w.reply(*m, answer{j->id, j->text.size()});
    }
}

// A short text lives inside the string, a long one on the heap: a string destroyed twice
// shows either way, as a free of what malloc never gave or as a double free.
task<void> ask_with_temporaries(primary<P>& p) {
    auto& h = co_await support::fork_worker(p);
    const std::string long_text(100, 'x');
    for (std::uint64_t i = 0; i < 100; ++i) {
#ifdef CLUSTER_REFUSES_AWAITED_TEMPORARIES
        const job short_job{i, "text"};
        auto r = co_await h.request<answer>(short_job, 2s);
        const job long_job{i, long_text};
        auto s = co_await h.request<answer>(long_job, 2s);
#else
        auto r = co_await h.request<answer>(job{i, "text"}, 2s);
        auto s = co_await h.request<answer>(job{i, long_text}, 2s);
#endif
        REQUIRE(r.has_value());
        REQUIRE(s.has_value());
        CHECK(r->id == i);
        CHECK(r->count == 4);
        CHECK(s->count == long_text.size());
    }
}

}  // namespace

TEST_CASE("a request's temporary message is destroyed once: as written under clang, named under g++") {
    primary_options o;
    o.restart.mode = restart_mode::temporary;
    support::with_primary<P>(std::move(o), measuring_worker, ask_with_temporaries);
}
